"""Data-parallel runs: one process per device, started by torchrun or by SLURM through submitit.

    torchrun --nproc_per_node=N train.py ...     (RANK, WORLD_SIZE, LOCAL_RANK from torchrun)
    python train.py -m ... hydra/launcher=slurm_ddp   (from SLURM's variables, via submitit)

A single process (no WORLD_SIZE) is world size 1 and every helper here is then a no-op, so the
trainer has one code path. NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes metrics, W&B, checkpoints and the summary."""
        return self.rank == 0


def _from_submitit() -> None:
    """Under a submitit job of several tasks (SLURM, or its local executor), export the env://
    variables torch.distributed reads, from SLURM's own (submitit's TorchDistributedEnvironment)."""
    if "SUBMITIT_EXECUTOR" not in os.environ or "RANK" in os.environ:
        return
    from submitit import JobEnvironment  # optional: only under a submitit job
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks > 1:
        # CUDA_VISIBLE_DEVICES stays as SLURM set it: each task takes cuda:<local rank> of those.
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def init() -> DistEnv:
    """This process's place in the job; starts the process group the first time it is needed."""
    _from_submitit()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            # Before any collective: NCCL builds each rank's communicator on the current device,
            # and without this every rank's would be on GPU 0 (NCCL then refuses the duplicate).
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return current()


def current() -> DistEnv:
    if not dist.is_initialized():
        return DistEnv()
    return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (say, building a cache), the others after it is done."""
    env = current()
    if not env.main:
        barrier()
    yield
    if env.main:
        barrier()


def _device() -> torch.device:
    """Where collectives put their tensors: the current CUDA device under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar tensor over all ranks."""
    if not dist.is_initialized():
        return value
    out = value.detach().to(_device(), torch.float64).clone()
    dist.all_reduce(out)
    return (out / dist.get_world_size()).to(value.device, value.dtype)


def max_int(value: int) -> int:
    """The largest of one int per rank (e.g. a preemption signal number, 0 for none)."""
    if not dist.is_initialized():
        return value
    out = torch.tensor([value], dtype=torch.int64, device=_device())
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return int(out.item())


def gather(obj: Any) -> list[Any]:
    """One object from every rank, in rank order, on every rank."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any) -> Any:
    """Rank 0's object, on every rank."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
