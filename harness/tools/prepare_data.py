"""Fill the token cache ahead of training: python -m harness.tools.prepare_data [data=...]

Training does this on first use too; this entry point lets a cluster job start with the cache
ready (prepare it once on a login node, then launch the sweep).
"""

from __future__ import annotations

import sys

from harness.cli import compose_checked, fail
from harness.data import prepare_tokens
from harness.errors import UserInputError


def main(argv: list[str]) -> None:
    try:
        cfg = compose_checked(argv)
        data = prepare_tokens(cfg.data, min_tokens=cfg.model.block_size + 1)
    except UserInputError as e:
        fail(str(e))
    name, train, val = data.manifest.get("name"), len(data.train), len(data.val)
    print(f"{name}: {train:,} train / {val:,} val tokens in {data.directory}")


if __name__ == "__main__":
    main(sys.argv[1:])
