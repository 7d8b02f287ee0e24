"""A full disk or an exceeded quota (ENOSPC, EDQUOT) as one clear failure.

Any write the run makes can hit it: a checkpoint, metrics.jsonl, summary.json, the token cache,
W&B's files, Hydra's config copy. Whatever the layer, the run ends with one line saying what could
not be written, where, about how much space it needed, the last good checkpoint and the fix, and
train.py exits with DISK_FULL_EXIT. The layer that was writing removes its partial temp file
first, so the last good checkpoint and metrics.jsonl up to it are what is left, and
`trainer.resume=auto` continues once there is space.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

DISK_FULL_EXIT = 3
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
FIX = (
    "free space there, keep fewer or rarer checkpoints (trainer.keep_checkpoints, "
    "trainer.ckpt_interval) or write elsewhere (hydra.run.dir=...), then rerun the same command "
    "(trainer.resume=auto continues from the last good checkpoint)"
)


class DiskFullError(OSError):
    """A write failed for want of space or quota; str() is the one line a user sees."""

    def __init__(
        self,
        what: str,
        where: Path | str | None,
        needed: int | None = None,
        last_checkpoint: tuple[int, Path] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.what, self.where, self.needed = what, where, needed
        self.last_checkpoint = last_checkpoint
        self.errno_name = errno.errorcode.get(getattr(root_cause(cause), "errno", None), "ENOSPC")
        super().__init__(errno.ENOSPC, self.message())

    def with_checkpoint(self, last: tuple[int, Path] | None) -> DiskFullError:
        return DiskFullError(self.what, self.where, self.needed, last, self)

    def message(self) -> str:
        reason = "quota exceeded" if self.errno_name == "EDQUOT" else "no space left on device"
        where = f" at {self.where}" if self.where else ""
        needed = f" (about {human_bytes(self.needed)} needed)" if self.needed else ""
        if self.last_checkpoint:
            step, path = self.last_checkpoint
            last = f"; last good checkpoint: step {step}, {path}"
        else:
            last = "; no checkpoint was written yet"
        return f"disk full: could not write {self.what}{where}{needed}: {reason}{last}; {FIX}"

    def __str__(self) -> str:
        return self.message()


def causes(e: BaseException | None) -> Iterator[BaseException]:
    """e, then what caused it or was being handled when it was raised, and so on."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def root_cause(e: BaseException | None) -> BaseException | None:
    return next((c for c in causes(e) if getattr(c, "errno", None) in DISK_FULL_ERRNOS), e)


def is_disk_full(e: BaseException) -> bool:
    """Whether `e` comes from a full disk or quota: an OSError with ENOSPC/EDQUOT anywhere in its
    chain (torch.save, say, raises its own RuntimeError while handling the OSError)."""
    return any(
        isinstance(c, DiskFullError) or getattr(c, "errno", None) in DISK_FULL_ERRNOS
        for c in causes(e)
    )


def as_disk_full(e: BaseException, what: str, where: Path | str | None) -> DiskFullError:
    """`e` (known to be a disk-full error) as a DiskFullError naming what was being written."""
    found = next((c for c in causes(e) if isinstance(c, DiskFullError)), None)
    if found is not None:
        return found
    filename = getattr(root_cause(e), "filename", None)
    return DiskFullError(what, filename or where, cause=e)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def state_nbytes(state: Any) -> int:
    """The bytes of the tensors in a (nested) state dict, each storage once (torch.save writes a
    tied weight once): about a checkpoint's size on disk."""
    storages: dict[int, int] = {}

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            storage = x.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list | tuple):
            for v in x:
                walk(v)

    walk(state)
    return sum(storages.values())


def free_bytes(path: Path) -> int:
    """Free space for this user on the filesystem holding `path` (or its nearest existing
    parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


# The least free space a run needs to start: Hydra's config copy, summary.json, the first lines
# of metrics.jsonl. Less than this and the run would fail inside Hydra before the trainer starts.
MIN_FREE_TO_START = 256 * 1024
