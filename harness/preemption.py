"""Preemption: SLURM's signals and Ctrl-C become a flag the trainer checks between steps.

SIGTERM: SLURM preemption or scancel; SIGUSR1/SIGUSR2: SLURM's warning before the time limit
(submitit asks for SIGUSR2 by default); SIGINT: Ctrl-C. The step in flight finishes, a checkpoint
is written, then Preempted is raised; train.py passes a SLURM signal on to the handler it
replaced (submitit's requeue) or exits, and stops a run or a sweep on SIGINT (harness.entry).
A second SIGINT exits at once, with the last checkpoint kept and no traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from harness.summary import RunStatus

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
STOP_SIGNALS = (*PREEMPT_SIGNALS, signal.SIGINT)
INTERRUPTED_EXIT = 128 + signal.SIGINT


class Preempted(Exception):
    """A preemption signal arrived; a checkpoint was written and the job should be requeued."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"{signal.Signals(signum).name} at step {step}; checkpoint written")
        self.signum = signum

    @property
    def status(self) -> RunStatus:
        return RunStatus.interrupted if self.signum == signal.SIGINT else RunStatus.preempted


class PreemptionFlag:
    """Within this context, preemption signals set `signal` instead of ending the process.
    `on_abort` (a second Ctrl-C, just before the process exits): records the stop and says what
    is kept."""

    def __init__(self, on_abort: Callable[[], str] | None = None) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}
        self.on_abort = on_abort

    def stopping(self) -> bool:
        """Whether a stop signal arrived (long work checks it: an evaluation stops early)."""
        return self.signal is not None

    def __enter__(self) -> PreemptionFlag:
        for sig in STOP_SIGNALS:
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals to the launcher
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT:
            if self.signal == signal.SIGINT:
                kept = self.on_abort() if self.on_abort is not None else "the last one stays"
                print(f"\ninterrupted again: stopping now ({kept})", flush=True)
                sys.stderr.flush()
                os._exit(INTERRUPTED_EXIT)
            print("\ninterrupted: finishing this step, then a checkpoint (Ctrl-C again: stop now)")
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
