"""What a gpu-check run records: its trainings, its stages, the report they fill."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Training:
    model: str
    impl: str
    compile: bool
    steps: int
    status: str = "not run"
    tokens_per_s: float | None = None  # steady state: median over the second half's log windows
    mfu: float | None = None
    model_tflops: float | None = None
    peak_memory_mib: float | None = None
    final_val_loss: float | None = None
    wall_s: float | None = None
    error: str = ""  # the last STDERR_LINES lines of stderr of a failed run
    run_dir: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}-{self.impl}-{'compiled' if self.compile else 'eager'}"


@dataclass
class Stage:
    name: str
    estimate_s: float
    status: str = "planned"  # planned, done, failed, skipped, cut (past its cap)
    wall_s: float | None = None
    note: str = ""
    min_s: float | None = None  # the least time worth starting it with (default: the estimate)
    cap_s: float | None = None  # the hard cap: past it the stage is cut (default: CAP_FACTOR x)


@dataclass
class Report:
    gpu: str
    versions: dict[str, str]
    date: str
    budget_s: float | None = None
    stages: list[Stage] = field(default_factory=list)
    tests: dict[str, dict[str, int]] = field(default_factory=dict)
    test_failures: list[str] = field(default_factory=list)
    kernels: list[dict] = field(default_factory=list)
    copy_gbps: float | None = None
    trainings: list[Training] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    inference: list[dict] = field(default_factory=list)  # bench.inference's rows
