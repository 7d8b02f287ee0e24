"""What gpu-check runs and how long each stage is expected to take."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_FILES = ("tests/test_compile.py", "tests/test_gpu.py", "tests/test_kernels.py")
TEST_MARKS = "gpu or cuda"
SHARDS = 8  # parallel pytest processes: the cost is compiling ~440 kernel specialisations
TRAIN_MODEL, TRAIN_STEPS, LOG_INTERVAL = "gpt2_124m", 60, 10
FULL_TRAININGS = {"small": 300, "gpt2_124m": 150}  # model -> steps, with --full
DEFAULT_BUDGET_S = 355.0
STDERR_LINES = 50  # kept from a failed training's stderr
JUDGED_MB = 100.0  # bandwidth goals are judged where the kernel moves at least this much
FUSED = "triton (packed, in-place)"  # the implementation the gated FFN runs
# The goals, from the project's issue for the fast path (H100, bf16, measured in one run).
GOAL_FWD_COPY, GOAL_FWDBWD_COPY, GOAL_MFU = 90.0, 85.0, 0.45
# Seconds on one H100/H200 with cold Triton and inductor caches: what two runs on an H200
# (2026-12-04) took, with a margin. A run records what each took (results.json "timings"); the
# next run on the same GPU plans with those instead.
ESTIMATES = {
    "preflight": 10.0,  # imports, CUDA start-up, the token cache check (7 s measured)
    "tests": 70.0,  # 8 processes: kernel compiles, two inductor compiles of small GPTs (56-61 s)
    "kernels:start": 12.0,  # process start, copy bandwidth
    "kernels:case": 8.0,  # one inductor compile (fwd+bwd) and 6 implementations timed (32 s / 4)
    "kernels:block": 20.0,  # the gated FFN block, torch, triton and quack (estimate)
    "training:eager": 25.0,  # start-up, data, 60 steps, two evaluations (18-22 s)
    "training:compiled": 50.0,  # the same plus compiling gpt2_124m forward and backward (41-46 s)
    "training:quack": 60.0,  # compiled, plus the CUTLASS DSL's first compile (estimate)
    "inference": 50.0,  # bench.inference, eager and compiled (CUDA graphs): 2 x 3 rounds (estimate)
}
INFERENCE_ARGS = ["experiment=contenders", "ffn=relu,swiglu", "model=gpt2_124m"]
INFERENCE_ROUNDS = 3
