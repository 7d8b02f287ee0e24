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
    decoding through the KV cache (GPT.generate).
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
    mixes = not torch.allclose(
        full, stepwise, rtol=1e-4, atol=1e-5 * float(full.abs().max()) + 1e-7
    )
    return Probe(mixes_positions=mixes)
