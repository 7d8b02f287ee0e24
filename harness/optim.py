"""Every optimizer of the `optim` config group, which one owns each parameter, and the schedule.

    optimizer = build_optimizer(model, cfg.optim, fused)   # optim=adamw | optim=muon
    set_rates(optimizer, step, cfg.optim, total)           # each group's initial rate x schedule

- ``optim=adamw``: AdamW over every parameter, weight decay on matrices only.
- ``optim=muon``: torch.optim.Muon (torch's own) over the 2-D weight matrices inside the blocks
  (attention's and every FFN's, a user's included), AdamW over everything else: the embedding
  (tied to the LM head), norms, biases, scalars (xIELU's alphas, PolyNorm's coefficients, a
  Swish beta) and any parameter that is not 2-D (a mixture of experts' 3-D banks). A weight that
  packs several matrices is orthogonalised as the matrices it holds, as separate nn.Linears
  would be: a gated FFN's w_in as its gate and its value (split by the FFN's own gate_and_value:
  the telemetry protocol), attention's qkv as q, k and v. Each such matrix is a view of the
  packed weight given to Muon as a parameter of its own (`Packed`), whose gradient is the same
  view of the packed gradient.

Adding an optimizer: one builder function in BUILDERS and one configs/optim/<name>.yaml
(docs/extending.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ffn_variants.telemetry import is_gated
from harness.config import OptimConfig, OptimName

# --------------------------------------------------------------------------- the schedule


def warmup_steps(optim: OptimConfig, total: int) -> int:
    """optim.warmup_fraction of the run's steps if set, else optim.warmup_steps."""
    if optim.warmup_fraction is None:
        return optim.warmup_steps
    return max(1, round(optim.warmup_fraction * total)) if optim.warmup_fraction else 0


def scheduled(initial: float, step: int, optim: OptimConfig, total: int) -> float:
    """A group's rate at `step`: linear warmup to its initial rate, then cosine decay to
    initial * min_lr_ratio at `total` steps."""
    warmup = warmup_steps(optim, total)
    if step < warmup:
        return initial * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return initial * (optim.min_lr_ratio + (1 - optim.min_lr_ratio) * cosine)


def set_rates(optimizer: Any, step: int, optim: OptimConfig, total: int) -> float:
    """Each group's rate: its initial rate under the schedule (nanochat's group["lr"] =
    group["initial_lr"] * lrm); returns optim.lr's scheduled value, the rate logged."""
    for group in optimizer.param_groups:
        group["lr"] = scheduled(group["initial_lr"], step, optim, total)
    return scheduled(optim.lr, step, optim, total)


# --------------------------------------------------------------------------- who owns what


@dataclass
class Packed:
    """A weight and the matrices it holds: `split` gives them as views of a tensor of its shape
    (the weight, or its gradient); each matrix is a Parameter of its own for Muon."""

    name: str
    weight: nn.Parameter
    split: Callable[[torch.Tensor], list[torch.Tensor]]
    pieces: list[nn.Parameter] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pieces = [
            nn.Parameter(v.detach(), requires_grad=False) for v in self.split(self.weight)
        ]
        storage = self.weight.untyped_storage().data_ptr()
        if any(p.untyped_storage().data_ptr() != storage for p in self.pieces):
            raise ValueError(f"{self.name}: its matrices must be views of it (slices, not copies)")

    def link_grads(self) -> None:
        """Each matrix's gradient: the same view of the weight's gradient."""
        grad = self.weight.grad
        views = [None] * len(self.pieces) if grad is None else self.split(grad)
        for piece, view in zip(self.pieces, views, strict=True):
            piece.grad = view


def block_matrices(model: nn.Module) -> Iterator[Packed]:
    """The 2-D weights inside the blocks, each with the matrices it holds (module doc)."""
    for i, block in enumerate(model.blocks):
        for name, p in block.named_parameters():
            if p.ndim != 2 or not p.requires_grad:
                continue
            full = f"blocks.{i}.{name}"
            if name == "attn.qkv.weight":
                yield Packed(full, p, lambda t: list(t.chunk(3, dim=0)))
            elif name == "ffn.w_in.weight" and is_gated(block.ffn):
                ffn = block.ffn
                yield Packed(full, p, lambda t, f=ffn: [v.T for v in f.gate_and_value(t.T)])
            else:
                yield Packed(full, p, lambda t: [t])


def ownership(model: nn.Module, name: OptimName) -> dict[str, list[str]]:
    """Which optimizer owns each trainable parameter, by name (summary.json, W&B config)."""
    muon = {m.name for m in block_matrices(model)} if name == OptimName.muon else set()
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    out = {"adamw": [n for n in names if n not in muon]}
    if name == OptimName.muon:
        out = {"muon": [n for n in names if n in muon], **out}
    return out


# --------------------------------------------------------------------------- the optimizers


def _adamw(params: list[nn.Parameter], optim: OptimConfig, fused: bool) -> torch.optim.AdamW:
    """AdamW; weight decay applies to matrices, not to norm gains or biases."""
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": optim.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(
        [g for g in groups if g["params"]] or groups[:1],
        lr=optim.lr,
        betas=(optim.beta1, optim.beta2),
        eps=optim.eps,
        fused=fused or None,
    )
    for group in opt.param_groups:
        group["initial_lr"] = optim.lr
    return opt


def build_adamw(model: nn.Module, optim: OptimConfig, fused: bool) -> torch.optim.AdamW:
    return _adamw([p for p in model.parameters() if p.requires_grad], optim, fused)


class MuonWithAdamW:
    """torch.optim.Muon over the blocks' matrices and AdamW over the rest, stepped as one.

    `found_inf` (a 0-d float tensor, 1.0: skip): a fused AdamW skips the step itself; Muon has no
    such input, so its matrices and momentum are kept from before the step where the flag is set
    (a copy per step, on the device: no host sync)."""

    def __init__(self, model: nn.Module, optim: OptimConfig, fused: bool) -> None:
        m = optim.muon
        self.packed = list(block_matrices(model))
        owned = {id(x.weight) for x in self.packed}
        pieces = [piece for x in self.packed for piece in x.pieces]
        decay = optim.weight_decay if m.weight_decay is None else m.weight_decay
        self.muon = torch.optim.Muon(
            pieces,
            lr=optim.lr * m.lr_ratio,
            weight_decay=decay,
            momentum=m.momentum,
            nesterov=m.nesterov,
            ns_steps=m.ns_steps,
            eps=m.eps,
            adjust_lr_fn=str(m.adjust_lr_fn),
        )
        self.muon.param_groups[0]["initial_lr"] = optim.lr * m.lr_ratio
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in owned]
        self.adamw = _adamw(rest, optim, fused)
        self.fused = fused
        self.found_inf: torch.Tensor | None = None

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    def step(self) -> None:
        for x in self.packed:
            x.link_grads()
        skip = self.found_inf
        kept = None
        if skip is not None:
            pieces = [p for g in self.muon.param_groups for p in g["params"]]
            buffers = [self.muon.state[p].get("momentum_buffer") for p in pieces]
            kept = [(p, p.detach().clone()) for p in pieces]
            kept += [(b, b.clone()) for b in buffers if b is not None]
        self.muon.step()
        if kept is not None:
            for t, before in kept:
                t.copy_(torch.where(skip > 0, before, t))
        if self.fused:
            self.adamw.found_inf = skip
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.adamw.zero_grad(set_to_none=set_to_none)
        for x in self.packed:
            x.weight.grad = None
            for piece in x.pieces:
                piece.grad = None

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])

    def state_nbytes(self) -> int:
        """Bytes of optimizer state once every slot exists: Muon's momentum per matrix, AdamW's
        two moments per other parameter."""
        muon = sum(
            p.numel() * p.element_size() for g in self.muon.param_groups for p in g["params"]
        )
        adamw = sum(
            p.numel() * p.element_size() for g in self.adamw.param_groups for p in g["params"]
        )
        return muon + 2 * adamw


def _nbytes(optimizer: Any) -> int:
    return sum(p.numel() * p.element_size() for g in optimizer.param_groups for p in g["params"])


def build_muon(model: nn.Module, optim: OptimConfig, fused: bool) -> MuonWithAdamW:
    return MuonWithAdamW(model, optim, fused)


BUILDERS: dict[str, Callable[[nn.Module, OptimConfig, bool], Any]] = {
    OptimName.adamw: build_adamw,
    OptimName.muon: build_muon,
}


def build_optimizer(model: nn.Module, optim: OptimConfig, fused: bool) -> Any:
    """The optimizer optim.name names over `model`'s trainable parameters. `fused`: AdamW's
    fused kernel (which skips a non-finite step on the device, found_inf)."""
    return BUILDERS[optim.name](model, optim, fused)


def state_nbytes(optimizer: Any) -> int:
    """Bytes of the optimizer's state at full size (AdamW: two moments per parameter)."""
    if hasattr(optimizer, "state_nbytes"):
        return optimizer.state_nbytes()
    return 2 * _nbytes(optimizer)
