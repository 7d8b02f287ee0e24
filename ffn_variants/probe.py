"""One real forward of an FFN before anything trains: does it run, keep its input's shape, and
treat each position on its own?

A user's module may do anything; a meta build and a meta forward (ffn_variants.counting) cannot
see a shape mistake that only a real tensor shows, nor a module that mixes positions (a
convolution over the sequence), whose outputs a KV cache, fed one position at a time, would get
wrong. The probe builds the layer on the CPU from a fixed seed and runs it on a small real input:
  - a forward that raises, or returns anything but a tensor of the input's shape, is a ValueError
    naming the module (the pre-flight turns it into one line and exit code 2);
  - `mixes_positions` compares the full forward of [1, T, d_model] with T forwards of one
    position each: where they differ, generation recomputes the context each step instead of
    decoding through the KV cache (GPT.generate);
  - an FFN that reads later positions (a convolution padded on the right) would learn from the
    very tokens it is asked to predict, and "win" by it: the probe changes the positions from t
    on, for every t, and an output before t that moves is a ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ffn_variants.registry import Impl, Variant, build_ffn

POSITIONS = 6  # the probe's sequence length


@dataclass(frozen=True)
class Probe:
    mixes_positions: bool


def probe_ffn(variant: Variant, d_model: int, d_ff: int, bias: bool = False) -> Probe:
    """Build one layer of `variant` on the CPU and run it on a small real input (module doc)."""
    where = f"ffn '{variant.name}' ({variant.source}, d_model={d_model}, d_ff={d_ff})"
    with torch.device("cpu"), torch.random.fork_rng(devices=[]):  # real, whatever the caller's
        torch.manual_seed(0)
        try:
            module = build_ffn(variant, d_model, d_ff, bias=bias, impl=Impl.torch).eval()
        except ValueError:
            raise
        except Exception as e:  # the user's module may fail in any way
            raise ValueError(f"{where}: building it failed: {type(e).__name__}: {e}") from None
        x = torch.randn(1, POSITIONS, d_model)
        with torch.no_grad():
            try:
                full = module(x)
                one_by_one = [module(x[:, t : t + 1]) for t in range(POSITIONS)]
            except Exception as e:
                raise ValueError(
                    f"{where}: its forward on a real [1, {POSITIONS}, {d_model}] input raised "
                    f"{type(e).__name__}: {e}"
                ) from None
    for out, shape in ((full, x.shape), *((o, (1, 1, d_model)) for o in one_by_one)):
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"{where}: its forward maps an input of shape {tuple(shape)} to {got}; an FFN "
                "must return a tensor of its input's shape [..., d_model] (docs/extending.md)"
            )
    stepwise = torch.cat(one_by_one, dim=1)
    mixes = not _close(full, stepwise)
    if mixes:
        _check_causal(module, x, full, where)
    return Probe(mixes_positions=mixes)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(a.abs().max()) + 1e-7)


def _check_causal(module: torch.nn.Module, x: torch.Tensor, full: torch.Tensor, where: str) -> None:
    """Raise where an output before position t moves when the input from t on changes."""
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        for t in range(1, POSITIONS):
            changed = x.clone()
            changed[:, t:] = torch.randn_like(changed[:, t:])
            if not _close(full[:, :t], module(changed)[:, :t]):
                raise ValueError(
                    f"{where}: reads later positions: its output at positions before {t} moved "
                    f"when only positions {t}.. changed, so it would see the tokens it predicts; "
                    "an FFN may mix positions only causally, e.g. a convolution padded on the "
                    "left (docs/extending.md)"
                )
