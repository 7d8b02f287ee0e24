"""The goals, judged from what the stages measured."""

from __future__ import annotations

from bench.gpu_check.config import FUSED, GOAL_FWD_COPY, GOAL_FWDBWD_COPY, GOAL_MFU, JUDGED_MB
from bench.gpu_check.records import Report, Training


def _moved_mb(row: dict, direction: str) -> float:
    from bench.kernel_cases import gated_bytes

    if row.get(f"{direction}_mb") is not None:
        return float(row[f"{direction}_mb"])
    return gated_bytes(row["n_rows"], row["n_cols"], 2, backward=direction == "fwdbwd") / 1e6


def _case(row: dict) -> str:
    return f"{row['activation']} {row['n_rows']}x{row['n_cols']}"


def _bandwidth_goal(fused: list[dict], direction: str, goal: float, label: str):
    judged = [r for r in fused if _moved_mb(r, direction) >= JUDGED_MB]
    small = [f"{_case(r)} ({_moved_mb(r, direction):.0f} MB)" for r in fused if r not in judged]
    pct = f"{direction}_pct_copy"
    measured = ", ".join(f"{_case(r)}: {r[pct]:.1f}%" for r in judged) or "no shape"
    if small:
        measured += f"; not judged, under {JUDGED_MB:.0f} MB: {', '.join(small)}"
    met = all(r[pct] >= goal for r in judged) if judged else None
    return (f"fused {label} ≥ {goal:.0f}% of copy bandwidth", met, measured)


def _kernel_goals(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    fused = [r for r in rows if r["impl"] == FUSED and r.get("fwd_ms") is not None]
    if not fused:
        return [("kernel benchmark", None, "no rows")]
    by_case: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_case.setdefault((r["activation"], r["n_rows"], r["n_cols"]), {})[r["impl"]] = r
    slower, heavier = [], []
    for case, impls in by_case.items():
        ours = impls.get(FUSED)
        if not ours or ours.get("fwd_ms") is None:
            continue
        for rival in ("eager", "torch.compile", "liger"):
            other = impls.get(rival)
            if not other or other.get("fwdbwd_ms") is None:
                continue
            where = f"{case[0]} {case[1]}x{case[2]} vs {rival}"
            for d in ("fwd", "fwdbwd"):  # device time where measured, else wall time
                mine, theirs = (r.get(f"{d}_device_ms") or r[f"{d}_ms"] for r in (ours, other))
                if mine > theirs:
                    slower.append(f"{where} ({'fwd' if d == 'fwd' else 'fwd+bwd'})")
            if rival == "liger" and ours["fwdbwd_peak_mib"] > other["fwdbwd_peak_mib"]:
                heavier.append(where)
    return [
        _bandwidth_goal(fused, "fwd", GOAL_FWD_COPY, "forward"),
        _bandwidth_goal(fused, "fwdbwd", GOAL_FWDBWD_COPY, "forward+backward"),
        (
            "never slower than eager, torch.compile or Liger (device time, every shape)",
            not slower,
            ", ".join(slower) or "none",
        ),
        *_block_goals(rows),
        ("peak memory ≤ Liger's", not heavier, ", ".join(heavier) or "none"),
    ]


def _block_goals(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    """The FFN block (forward + backward, device time): QuACK's single pass against the fused
    op and against torch."""
    blocks = {(r["activation"], r["n_rows"], r["n_cols"], r["impl"]): r for r in rows}
    goals = []
    for act, n, f, impl in sorted(k for k in blocks if k[3] == "block: quack"):
        quack = blocks[(act, n, f, impl)]
        others = {i: blocks.get((act, n, f, f"block: {i}")) for i in ("torch", "triton")}
        times = {
            k: (r.get("fwdbwd_device_ms") or r.get("fwdbwd_ms")) if r else None
            for k, r in {"quack": quack, **others}.items()
        }
        if None in times.values():
            goals.append((f"{act} block {n}x{f}: quack ≤ triton and torch", None, "not measured"))
            continue
        best = min(times["torch"], times["triton"])
        goals.append(
            (
                f"{act} block {n}x{f}: quack ≤ triton and torch (fwd+bwd, device)",
                times["quack"] <= best,
                ", ".join(f"{k} {v:.3f} ms" for k, v in times.items()),
            )
        )
    return goals


def _training_goals(runs: list[Training]) -> list[tuple[str, bool | None, str]]:
    by = {(t.model, t.impl, t.compile): t for t in runs}
    goals = []
    for model in sorted({t.model for t in runs}):
        plain = by.get((model, "torch", True))
        for impl, label in (("triton", "the fused op"), ("quack", "QuACK's gated GEMM")):
            ours = by.get((model, impl, True))
            if ours and plain and ours.tokens_per_s and plain.tokens_per_s:
                ratio = ours.tokens_per_s / plain.tokens_per_s
                goals.append(
                    (
                        f"{model}: compiled step with {label} ≥ compile alone",
                        ratio >= 1.0,
                        f"{ratio:.3f}x",
                    )
                )
    best = max((t.mfu for t in runs if t.model == "gpt2_124m" and t.mfu), default=None)
    goals.append(
        (
            f"MFU ≥ {GOAL_MFU:.0%} at gpt2_124m",
            None if best is None else best >= GOAL_MFU,
            "n/a" if best is None else f"best {best:.1%}",
        )
    )
    return goals


def _inference_goals(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    """Compiled decode (CUDA graphs) at least 10x eager's tokens/s at batch 1."""
    by = {(r["variant"], r["model"], r["mode"]): r for r in rows if not r.get("error")}
    goals = []
    for variant, model, mode in sorted(k for k in by if k[2] == "eager"):
        compiled = by.get((variant, model, "compiled"))
        eager = by[(variant, model, mode)]
        key = "decode_b1_tokens_per_s"
        if compiled and compiled.get(key) and eager.get(key):
            ratio = compiled[key] / eager[key]
            goals.append(
                (f"{variant} {model}: compiled decode ≥ 10x eager", ratio >= 10, f"{ratio:.1f}x")
            )
    return goals or [("compiled decode ≥ 10x eager", None, "not measured")]


def goals(report: Report) -> list[tuple[str, bool | None, str]]:
    """(goal, met (None: not measured), what was measured)."""
    return (
        _kernel_goals(report.kernels)
        + _training_goals(report.trainings)
        + _inference_goals(report.inference)
    )
