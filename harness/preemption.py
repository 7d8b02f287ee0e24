"""Preemption: SLURM's signals become a flag the trainer checks between steps.

SIGTERM: SLURM preemption or scancel; SIGUSR1/SIGUSR2: SLURM's warning before the time limit
(submitit asks for SIGUSR2 by default). The step in flight finishes, a checkpoint is written,
then Preempted is raised; train.py passes the signal on to the handler it replaced (submitit's
requeue) or exits.
"""

from __future__ import annotations

import signal
from typing import Any

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class Preempted(Exception):
    """A preemption signal arrived; a checkpoint was written and the job should be requeued."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"{signal.Signals(signum).name} at step {step}; checkpoint written")
        self.signum = signum


class PreemptionFlag:
    """Within this context, preemption signals set `signal` instead of ending the process."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> PreemptionFlag:
        for sig in PREEMPT_SIGNALS:
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals to the launcher
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
