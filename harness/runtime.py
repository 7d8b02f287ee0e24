"""Where and how a run computes: the device, determinism, mixed precision and the run's length."""

from __future__ import annotations

import contextlib
import math
import os

import torch

from harness.config import DType, TrainerConfig
from harness.errors import UserInputError


def pick_device(name: str, local_rank: int | None = None) -> torch.device:
    """trainer.device as a torch.device. auto: the GPU this job was given (CUDA_VISIBLE_DEVICES,
    set by a launcher) or, in a data-parallel run, the GPU of this process's local rank; the CPU
    where there is no GPU."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        device = torch.device("cuda", local_rank or 0)
    elif name == "cuda" and local_rank is not None:
        device = torch.device("cuda", local_rank)  # one GPU per process, not all on cuda:0
    else:
        device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(
                f"trainer.device={name} but CUDA is not available; use trainer.device=cpu"
            )
        if device.index is not None:
            torch.cuda.set_device(device)  # Triton and NCCL launch on the current device
    return device


# cuBLAS is deterministic only with a fixed workspace; PyTorch raises at the first matmul under
# deterministic algorithms without it. Read when cuBLAS creates its handle (the first matmul).
CUBLAS_WORKSPACE = ":4096:8"
_DETERMINISTIC_WORKSPACES = (":4096:8", ":16:8")


def use_deterministic_algorithms() -> None:
    """trainer.deterministic=true: deterministic kernels, and the cuBLAS workspace they need
    (CUBLAS_WORKSPACE_CONFIG, set here unless the environment already sets a valid one). Call
    before the first CUDA matmul."""
    value = os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    if value not in _DETERMINISTIC_WORKSPACES:
        raise UserInputError(
            f"trainer.deterministic=true needs CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE} (or "
            f":16:8) and the environment sets {value!r}; unset it or use one of those"
        )
    torch.use_deterministic_algorithms(True)


def compute_dtype(cfg: TrainerConfig, device: torch.device) -> torch.dtype:
    """What the matmuls run in: bf16 where trainer.dtype asks for it (auto: on CUDA), else fp32."""
    if cfg.dtype == DType.bf16 or (cfg.dtype == DType.auto and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def autocast(cfg: TrainerConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast where the compute dtype is bf16, else nothing (fp32 throughout)."""
    if compute_dtype(cfg, device) == torch.bfloat16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def planned_steps(trainer: TrainerConfig, non_embedding_params: int, tokens_per_step: int) -> int:
    """trainer.max_steps, or (when null) the steps that train tokens_per_param tokens per
    non-embedding parameter."""
    if trainer.max_steps is not None:
        return trainer.max_steps
    return max(1, math.ceil(trainer.tokens_per_param * non_embedding_params / tokens_per_step))
