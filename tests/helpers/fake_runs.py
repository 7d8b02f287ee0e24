"""Run dirs as the trainer leaves them, fabricated for the report's tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

GATED = {"swiglu", "geglu"}


def write_run(
    job_dir: Path,
    variant: str,
    seed: int,
    final: float | None = None,
    status: str = "completed",
    error: str | None = None,
    truncate: bool = False,
    summary: bool = True,
    metrics: bool = True,
    group: str = "glu_table-test",
    overrides: tuple[str, ...] = (),
    bpb: float | None = None,
    model: str = "tiny",
    lr: float | None = None,
    tuned: str | None = None,
    timed: tuple[float, float] | None = None,
    experiment: str = "glu_table",
    kurtosis: bool = False,
    epochs: float | None = None,
    val_curve: dict[int, float] | None = None,
    data: dict | None = None,
    documents: dict[str, tuple[int, float]] | None = None,
) -> None:
    """One fake run dir as the trainer leaves it. `bpb`: its final val bpb; `lr`: the optim.lr of
    its .hydra/config.yaml; `tuned`: the tuned-rates file of its .hydra/hydra.yaml (the sweeper
    set its rate); `timed`: (started_at, ended_at) on host "host-a"; `kurtosis`: log the outlier
    statistics too; `epochs`: the passes over the training split its summary records;
    `val_curve`: val/loss at steps 0, 50 and 100 (default: a line to `final`); `data`: its
    summary's data node; `documents`: its final evaluation per held-out document, name ->
    (tokens, loss)."""
    (job_dir / ".hydra").mkdir(parents=True)
    lines = [f"ffn={variant}", f"seed={seed}", f"experiment={experiment}", *overrides]
    if tuned and lr is not None:
        lines.append(f"optim.lr={lr}")
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {x}\n" for x in lines))
    if lr is not None:
        (job_dir / ".hydra" / "config.yaml").write_text(f"optim:\n  lr: {lr}\n")
    if tuned:
        (job_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  sweeper:\n    tuned: {tuned}\n")
    if metrics:
        lines = []
        for step in range(0, 101, 10):
            rec = {
                "step": step,
                "tokens": step * 2048,
                "time_s": step * 0.1,
                "train/loss": 10 - step * 0.04,
                "train/lr": 1e-3,
                "grad_norm/total": 1.0,
            }
            if step % 50 == 0:
                end = final if final is not None else 6.0
                rec["val/loss"] = val_curve[step] if val_curve else 10.0 - (10.0 - end) * step / 100
                if bpb is not None:
                    rec["val/bpb"] = 5.0 - (5.0 - bpb) * step / 100
            for layer in (0, 1):
                parts = ["gate", "value", "product"] if variant in GATED else ["act"]
                for part in parts:
                    rec[f"act/L{layer}/{part}/rms"] = 1.0 + step / 100 + layer * 0.1
                    rec[f"act/L{layer}/{part}/frac_zero"] = 0.0 if variant in GATED else 0.5
                    rec[f"act/L{layer}/{part}/absmax"] = 5.0 + step / 20
                if kurtosis:
                    rec[f"act/L{layer}/{parts[-1]}/kurtosis"] = 2.0 + step / 50
                    if variant in GATED:
                        rec[f"act/L{layer}/gate_value/alignment"] = 0.05 + step / 1000
            lines.append(json.dumps(rec))
        text = "\n".join(lines) + "\n"
        if truncate:
            text += '{"step": 110, "tokens": 225280, "train/lo'
        (job_dir / "metrics.jsonl").write_text(text)
    if summary:
        s = {
            "run_name": f"{variant}-s{seed}",
            "variant": variant,
            "seed": seed,
            "status": status,
            "error": error,
            "model": model,
            "match": "params",
            "params": {
                "total": 1_000_000 + (300 if variant in GATED else 0),
                "non_embedding": 800_000,
                "ffn": 400_000,
                "ffn_per_layer": 200_000,
                "d_ff": 512 if variant in GATED else 768,
            },
            "flops_per_token": {
                "total": 2_000_000,
                "ffn": 800_000,
                "train": 6_000_000,
                "ffn_share": 0.27,
            },
            "steps": 100,
            "tokens": 204800,
            "tokens_per_s": 1000.0 + seed,
            "mfu": 0.25 + 0.01 * seed,
            "model_tflops": 0.05,
            "peak_source": "measured: CPU float32 matmul at start-up",
            "wall_time_s": 10.0,
            "final_val_loss": final,
            "best_val_loss": None if final is None else final - 0.01,
            "final_val_bpb": bpb,
            "best_val_bpb": None if bpb is None else bpb - 0.005,
            "final_train_loss": final,
            "group": group,
            "device": "cpu",
        }
        if timed is not None:
            s.update(started_at=timed[0], ended_at=timed[1], host="host-a")
        if epochs is not None:
            s["data"] = {"name": "tiny", "epochs": {"planned": epochs, "done": epochs}}
        if data is not None:
            s["data"] = {**s.get("data", {}), **data}
        if documents is not None:
            s["final_val_documents"] = {
                k: {"tokens": n, "loss": loss} for k, (n, loss) in documents.items()
            }
        (job_dir / "summary.json").write_text(json.dumps(s))


SCALING_SIZES = {"cpu_d64": 1e12, "cpu_d96": 4e12, "cpu_d128": 16e12}  # size -> training FLOPs


def write_scaling_sweep(
    root: Path,
    curve: Callable[[float], float],
    noises: tuple[float, ...],
    y: str = "loss",
    scale: float = 1.3,
) -> None:
    """A 3-size sweep of relu and swiglu (one run per noise, seeds 0, 1, ...), each run's final
    `y` ("loss" or "bpb") on `curve` of its training FLOPs; swiglu's compute counts `scale` times,
    so relu's compute multiplier against it is `scale`."""
    job = 0
    for size, compute in SCALING_SIZES.items():
        for variant, factor in (("relu", 1.0), ("swiglu", scale)):
            for seed, noise in enumerate(noises):
                d = root / str(job)
                value = curve(factor * compute) + noise
                if y == "bpb":
                    write_run(d, variant, seed, 5.0, bpb=value, model=size)
                else:
                    write_run(d, variant, seed, value, model=size)
                s = json.loads((d / "summary.json").read_text())
                s.update(tokens=100_000)
                s["flops_per_token"]["train"] = compute / 100_000
                (d / "summary.json").write_text(json.dumps(s))
                (d / ".hydra" / "overrides.yaml").write_text(
                    f"- ffn={variant}\n- seed={seed}\n- model={size}\n"
                )
                job += 1
