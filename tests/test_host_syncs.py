"""A training step that does not log never waits for the device: the host reads the loss, the
gradient norm and the non-finite note only at steps that log, evaluate or checkpoint. Counted as
the calls that copy a tensor's value to the host (item, tolist, bool(), float(), ...) made by
this project's own code (a CPU run makes them as a GPU run would)."""

from __future__ import annotations

import collections
import traceback
from pathlib import Path

import pytest
from torch.overrides import TorchFunctionMode

from tests.helpers import REPO, compose, fresh_cache, tiny_overrides

READS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu"}


class HostReads(TorchFunctionMode):
    """Counts host reads whose caller is this project's code, by whether a step was running
    that does not log."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet_step = False
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in READS:
            caller = traceback.extract_stack(limit=2)[0].filename
            if caller.startswith(str(REPO)) and "site-packages" not in caller:
                where = "quiet" if self.quiet_step else "elsewhere"
                self.counts[where] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("optim", ["adamw", "muon"])
def test_steps_that_do_not_log_make_no_host_sync(
    optim: str, token_cache: Path, tmp_path: Path
) -> None:
    from harness.trainer import Trainer

    overrides = tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=40)
    overrides += [
        "trainer.log_interval=20",  # logs at steps 1, 20 and 40
        "trainer.eval_interval=40",
        "trainer.ckpt_interval=0",
        "logger.mode=disabled",
        f"optim={optim}",
        "trainer.on_nonfinite=skip",  # the device-side skip of both optimizers: no read either
    ]
    trainer = Trainer(compose(overrides), tmp_path / "run")
    reads = HostReads()
    step = trainer.train_step

    def watched():
        s = trainer.state.step
        reads.quiet_step = not ((s + 1) % 20 == 0 or s == 0)
        try:
            return step()
        finally:
            reads.quiet_step = False

    trainer.train_step = watched
    with reads:
        summary = trainer.train()
    assert summary.status == "completed" and summary.steps == 40
    assert reads.counts["quiet"] == 0, reads.counts
    assert 0 < reads.counts["elsewhere"] <= 30, reads.counts
