"""The GPT-2 BPE tokenizer (tiktoken ``r50k_base``), usable without OpenAI's blob store, and
GPT-2's BPE with fewer merges.

tiktoken downloads its rank files from openaipublic.blob.core.windows.net on first use. Where
only PyPI can be reached, the same file (byte for byte, sha256-checked) comes out of the
``openai-whisper`` sdist, fetched with ``pip download``; it is placed where tiktoken looks for its
cache (a file named by the sha1 of the source URL, under ``<root>/tiktoken``), and tiktoken then
loads it as usual.

``r50k_2k`` ... ``r50k_16k``: the first V - 1 ranks of r50k_base (the 256 bytes, then its merges
in rank order) and ``<|endoftext|>`` as token V - 1, V tokens in all. A BPE applies merges in rank
order, so this is exactly GPT-2's BPE stopped after V - 257 merges: the same pre-tokenizer, every
text still round-trips, only into more tokens. A small vocabulary shrinks the embedding and the
LM head, which dominate a small model's FLOPs at 50k tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe
from tiktoken_ext.openai_public import r50k_pat_str

from harness.data.downloads import Sdist, fetch_sdist, sha256_file
from harness.errors import UserInputError, one_line

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
ALIASES = {"gpt2": "r50k_base"}
# GPT-2's BPE cut to fewer merges: name -> vocabulary size (EOT included).
TRUNCATED = {"r50k_2k": 2048, "r50k_4k": 4096, "r50k_8k": 8192, "r50k_16k": 16384}
OFFLINE = ("r50k_base", *TRUNCATED)
ENDOFTEXT = "<|endoftext|>"
R50K_SIZE = 50257
# data.tokenizer=auto: the tokenizer follows model.vocab_size (see auto_tokenizer).
AUTO = "auto"

_env_lock = threading.Lock()


def known_tokenizers() -> list[str]:
    """Names data.tokenizer accepts: auto, the offline ones, their aliases, and tiktoken's own."""
    return sorted({AUTO, *OFFLINE, *ALIASES, *tiktoken.list_encoding_names()})


def offline_size(name: str) -> int | None:
    """The vocabulary size of an offline tokenizer (aliases included); None for tiktoken's own."""
    name = ALIASES.get(name, name)
    return R50K_SIZE if name == "r50k_base" else TRUNCATED.get(name)


def auto_tokenizer(vocab_size: int) -> str:
    """The largest GPT-2 BPE that fits `vocab_size` rows: the full r50k_base from 50,257 up, else
    the largest cut (r50k_8k for 8192); ValueError below the smallest cut."""
    if vocab_size >= R50K_SIZE:
        return "r50k_base"
    fitting = [name for name, size in TRUNCATED.items() if size <= vocab_size]
    if not fitting:
        raise ValueError(
            f"model.vocab_size={vocab_size} is smaller than every GPT-2 BPE cut (the smallest, "
            f"r50k_2k, has 2048 tokens); use model.vocab_size>=2048"
        )
    return max(fitting, key=TRUNCATED.__getitem__)


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


def ensure_r50k_ranks(root: str | Path) -> Path:
    """Path of the verified r50k_base rank file in ``<root>/tiktoken``, made if missing or bad."""
    path = Path(root) / "tiktoken" / R50K_CACHE_NAME
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


def _online_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken encoding other than r50k_base: it needs tiktoken's own download."""
    try:
        return tiktoken.get_encoding(name)
    except ValueError:  # a name tiktoken does not know
        known = ", ".join(known_tokenizers())
        raise UserInputError(f"unknown tokenizer {name!r}; known: {known}") from None
    except Exception as e:  # network errors from tiktoken's own download
        raise UserInputError(
            f"tokenizer {name!r} needs a download that failed ({one_line(e)}); "
            "use data.tokenizer=r50k_base, which works with only PyPI reachable"
        ) from e


def truncated_encoding(name: str, ranks_file: Path) -> tiktoken.Encoding:
    """GPT-2's BPE with its first TRUNCATED[name] - 1 ranks, and EOT as the last token."""
    size = TRUNCATED[name]
    ranks = load_tiktoken_bpe(str(ranks_file), expected_hash=R50K_SHA256)
    kept = {piece: rank for piece, rank in ranks.items() if rank < size - 1}
    return tiktoken.Encoding(
        name, pat_str=r50k_pat_str, mergeable_ranks=kept, special_tokens={ENDOFTEXT: size - 1}
    )


def get_encoding(name: str, root: str | Path) -> tiktoken.Encoding:
    """A tiktoken encoding; ``r50k_base`` (alias ``gpt2``) and the ``r50k_<N>k`` cuts of it
    work with only PyPI reachable.

    ``root`` is the data cache root (rank files go under ``<root>/tiktoken``). Raises
    UserInputError when the encoding can't be had.
    """
    key = ALIASES.get(name, name)
    if key not in OFFLINE:
        return _online_encoding(key)
    ranks = ensure_r50k_ranks(root)
    if key in TRUNCATED:
        return truncated_encoding(key, ranks)
    try:
        with _tiktoken_cache(ranks.parent):
            return tiktoken.get_encoding(key)
    except Exception as e:
        raise UserInputError(
            f"tiktoken could not load r50k_base from {ranks} ({one_line(e)}); "
            f"delete {ranks.parent} to rebuild it"
        ) from e
