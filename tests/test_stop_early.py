"""A stop before the first checkpoint: an evaluation ends within a batch of the signal, and a
second Ctrl-C records the stop (not "running") and says whether any checkpoint exists."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.helpers import REPO, compose, tiny_overrides


def test_an_evaluation_stops_between_batches_when_asked(token_cache, tmp_path):
    from harness.evaluation import validation_metrics
    from harness.trainer import Trainer

    overrides = [*tiny_overrides(token_cache), "trainer.eval_tokens=4096", "logger.mode=disabled"]
    overrides.append("trainer.batch_size=1")
    trainer = Trainer(compose(overrides), tmp_path / "run")
    assert len(trainer.data.val_windows) > 2
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1  # the signal arrives during the first batch

    metrics, documents = validation_metrics(
        trainer.model, trainer.data, trainer.device, trainer.autocast, stop
    )
    assert metrics is None and documents == {} and len(calls) == 2
    assert trainer.model.training  # left as it was
    full, _ = validation_metrics(trainer.model, trainer.data, trainer.device, trainer.autocast)
    assert full is not None and set(full) == {"val/loss", "val/bpb"}


def test_a_second_ctrl_c_records_the_stop_before_exiting():
    script = textwrap.dedent(
        """
        import os, signal, time
        from harness.preemption import PreemptionFlag

        def abort():
            print("recorded", flush=True)
            return "no checkpoint was written: a rerun starts over"

        with PreemptionFlag(abort) as flag:
            os.kill(os.getpid(), signal.SIGINT)
            assert flag.stopping()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        print("not reached")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 130, proc.stderr
    out = proc.stdout
    assert "recorded" in out and "not reached" not in out
    assert "stopping now (no checkpoint was written: a rerun starts over)" in out
    assert "Traceback" not in proc.stderr
