"""Every variant's activation drawn: python -m harness.tools.plot_activations [--out DIR]

One page (results/activations/activations.png): for each dense variant act(x) and d act/dx; for
each gated variant act(g) and d act/dg, and the gated product act(g) * u as a heat map over (g, u).
Each curve comes from the module the model builds (ffn_variants.variants.build_ffn): the dense
FFN's activation, the gated FFN's gate activation and its act(gate) * value, with derivatives
taken by autograd through those same functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ffn_variants.registry import BUILTIN_NAMES  # noqa: E402
from ffn_variants.variants import VARIANTS, GatedFFN, build_ffn  # noqa: E402

RANGE = 4.0
POINTS = 801


def _gated(name: str) -> bool:
    return VARIANTS[name].factory is GatedFFN


def curve(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, act(x), d act/dx) of variant `name`'s nonlinearity, as its module computes it."""
    ffn = build_ffn(name, 1, 1, impl="torch")
    x = torch.linspace(-RANGE, RANGE, POINTS, dtype=torch.float64, requires_grad=True)
    act = ffn.gate_activation if isinstance(ffn, GatedFFN) else ffn.act
    y = act(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return x.detach(), y.detach(), dy


def product(name: str, n: int = 201) -> tuple[torch.Tensor, torch.Tensor]:
    """(g axis, act(g) * u on an n x n grid over g, u), from the gated FFN's own product."""
    ffn = build_ffn(name, 1, 1, impl="torch")
    axis = torch.linspace(-RANGE, RANGE, n, dtype=torch.float64)
    g, u = torch.meshgrid(axis, axis, indexing="xy")
    with torch.no_grad():
        values = ffn.gated(torch.stack([g, u], dim=-1).reshape(-1, 2))
    return axis, values.reshape(n, n)


def draw_curve(ax, name: str) -> None:
    x, y, dy = curve(name)
    v, gated = VARIANTS[name], _gated(name)
    ax.plot(x, y, lw=2, label="act(g)" if gated else "act(x)")
    ax.plot(x, dy, lw=1.5, ls="--", label="d act/dg" if gated else "d act/dx")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set_ylim(-1.5, 4.0)
    ax.set_title(f"{name}: {v.formula}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)


def draw_product(ax, fig, name: str) -> None:
    axis, values = product(name)
    limit = float(values.abs().max())
    image = ax.imshow(
        values,
        origin="lower",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        extent=(-RANGE, RANGE, -RANGE, RANGE),
        aspect="auto",
    )
    ax.set_xlabel("gate g = xW", fontsize=8)
    ax.set_ylabel("value u = xV", fontsize=8)
    ax.set_title(f"{name}: act(g) · u", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)


def draw(out: Path) -> Path:
    builtins = [n for n in VARIANTS if n in BUILTIN_NAMES]  # activations: the built-ins' kwargs
    dense = [n for n in builtins if not _gated(n)]
    gated = [n for n in builtins if _gated(n)]
    panels = len(dense) + 2 * len(gated)
    cols = 4
    fig, axes = plt.subplots(
        -(-panels // cols), cols, figsize=(4.2 * cols, 3.3 * -(-panels // cols))
    )
    flat = list(axes.flat)
    for ax, name in zip(flat, dense, strict=False):
        draw_curve(ax, name)
    rest = flat[len(dense) :]
    for i, name in enumerate(gated):
        draw_curve(rest[2 * i], name)
        draw_product(rest[2 * i + 1], fig, name)
    for ax in flat[panels:]:
        ax.set_visible(False)
    fig.suptitle(
        "FFN activations (solid), their derivatives by autograd (dashed), and the gated "
        "products act(g)·u; swiglu_beta at its initial β = 1, xielu at its initial α_p = α_n = 0.8",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "activations.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m harness.tools.plot_activations", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", type=Path, default=Path("results/activations"))
    args = ap.parse_args(argv)
    print(f"wrote {draw(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
