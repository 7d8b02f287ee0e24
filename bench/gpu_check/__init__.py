"""The acceptance run for a CUDA machine: make gpu-check (python3 -m bench.gpu_check).

    python3 -m bench.gpu_check [--budget-s 355] [--full] [--dry-run] [--out results/gpu]

By default it fits in about 6 minutes on one H100/H200 (cold caches), so that it can be run,
read, fixed and run again within a short loan of a GPU:

1. preflight: every module the stages import, CUDA, the token cache in data/.
2. tests: the tests that exercise CUDA (`-m "gpu or cuda"`: the kernels forward and backward
   against float64 on odd shapes, packed and pair, in place and not, every dtype; the fused FFN;
   a training step; torch.compile with the op), in parallel pytest processes (--shard).
   CPU-only tests (ahead-of-time PTX, FLOP counts) are not part of it.
3. kernels: bench.kernels at the gated widths of model=small and gpt2_124m and at Liger-Kernel's
   F=32768, each case on its own (a failing implementation loses its row; a crashed process is
   restarted after the case it died in).
4. trainings: model=gpt2_124m trainer=gpu, ffn.impl=torch|triton x trainer.compile=false|true,
   each its own stage; steady-state tokens/s and MFU: the median of the second half's windows.

A stage that would not finish within --budget-s (by its estimate) is skipped, and the report says
so; estimates are built in, or the times the last run on the same GPU measured. --full runs the
longer check for a machine you own (every benchmark shape and activation, model=small too, more
steps) with no budget unless one is given. --dry-run prints the plan and its estimates and works
without a GPU.

Writes results/gpu/<gpu-name>/: report.md and results.json (rewritten after every stage), the
test logs and JUnit files, the kernel benchmark's files, and runs/ (each training's run dir, its
stdout and stderr). results/gpu/last-run names that folder (bench/gpu_run.sh packs it). Needs no
network once data/ holds the token cache and tokenizer files (make data; make install). The
trainings use the built-in Shakespeare corpus on purpose: the acceptance machine is offline, and
they measure speed and memory, not rankings (their passes over it do not matter; a comparison on
real text is experiment=contenders_gpu).
Exit codes: 2 when it cannot start (no CUDA, a missing module, no token cache), 1 when a test,
benchmark case or training failed, else 0.
"""

from __future__ import annotations

from bench.gpu_check.cli import main
from bench.gpu_check.config import STDERR_LINES, TEST_FILES
from bench.gpu_check.goals import goals
from bench.gpu_check.plan import Planned, execute, plan, print_plan
from bench.gpu_check.records import Report, Stage, Training
from bench.gpu_check.report import write
from bench.gpu_check.run import CLOCK, Clock
from bench.gpu_check.shards import junit_counts, test_command
from bench.gpu_check.trainings import planned_trainings, run_training, steady_state

__all__ = [
    "CLOCK",
    "Clock",
    "Planned",
    "Report",
    "STDERR_LINES",
    "Stage",
    "TEST_FILES",
    "Training",
    "execute",
    "goals",
    "junit_counts",
    "main",
    "plan",
    "planned_trainings",
    "print_plan",
    "run_training",
    "steady_state",
    "test_command",
    "write",
]
