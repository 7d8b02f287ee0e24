"""The sweeper of every multirun: Hydra's basic sweeper, plus per-variant learning rates.

    python train.py -m experiment=contenders hydra.sweeper.tuned=results/contenders_tune/tuned.yaml

With `tuned` unset it is the basic sweeper (the cartesian product of the sweep's values). With
`tuned` naming a file of chosen rates (harness.tuned, written by python -m sweep.tune), each job's
overrides get `optim.lr=<the rate of that job's variant at that job's model size>`, read from its
composed config: each job's .hydra/overrides.yaml and .hydra/config.yaml show the rate it trained
with. A sweep over optimizers gives one file per optimizer (hydra.sweeper.tuned=[a.yaml,b.yaml]):
each job's rate comes from the file tuned under its optim.name. A (size, variant) the file lacks
is caught by the pre-flight (harness.cli) before Hydra starts; here it would stop the sweep before
any job runs.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan loads this module outside
# sys.modules, where a dataclass cannot resolve string annotations.
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from harness.tuned import TunedSet


@dataclass
class TunedSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.ffn_variants_launcher.tuned_sweeper.TunedSweeper"
    # A file of chosen learning rates (model size -> variant -> rate), or a list of them (one per
    # optimizer the sweep trains under); null: one shared optim.lr.
    tuned: Any = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="tuned", node=TunedSweeperConf, provider="ffn_variants"
)


class TunedSweeper(BasicSweeper):
    def __init__(
        self,
        max_batch_size: int | None,
        params: dict[str, str] | None = None,
        tuned: Any = None,
    ) -> None:
        super().__init__(max_batch_size, params)
        if tuned is not None and not isinstance(tuned, str):
            tuned = OmegaConf.to_container(tuned) if OmegaConf.is_config(tuned) else list(tuned)
        self.tuned = TunedSet.load(tuned) if tuned else None
        self.rates: dict[tuple[str, ...], float] = {}  # a job's overrides but its seed -> rate

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        batch = super().get_job_batch()
        if self.tuned is None:
            return batch
        return [[*job, f"optim.lr={self.rate_of(job)!r}"] for job in batch]

    def rate_of(self, job: Sequence[str]) -> float:
        """The rate of the job's variant and size, from its composed config."""
        key = tuple(o for o in job if o.split("=", 1)[0].lstrip("+~") != "seed")
        if key not in self.rates:
            assert self.hydra_context is not None and self.config is not None
            cfg: Any = self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
            self.rates[key] = self.tuned.rate(
                str(cfg.optim.name), str(cfg.model.name), str(cfg.ffn.name)
            )
        return self.rates[key]
