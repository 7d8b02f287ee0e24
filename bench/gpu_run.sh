#!/usr/bin/env bash
# The acceptance run on a bare, offline GPU machine, in one command:
#
#     bash bench/gpu_run.sh [gpu_check options, e.g. --budget-s 300 | --dry-run]
#
# The machine needs torch and triton (and numpy, pytest, tiktoken, tqdm) but no network. Bring,
# next to the checkout:
#   .whl/   hydra-core, omegaconf, antlr4 and liger-kernel wheels (make gpu-wheels, where PyPI is
#           reachable)
#   data/   the GPT-2 BPE ranks, the built-in corpus and its token cache (make install; make data)
# The wheels (GPU_WHEELS, default .whl/, and .whl-quack/ where it exists) go into a target folder
# (GPU_SITE, default .gpu-site/) put first on PYTHONPATH, with a sitecustomize.py that makes it a
# site dir (site.addsitedir): the wheels' .pth files are processed there (the CUTLASS DSL finds
# its `cutlass` package through one), which a plain PYTHONPATH entry never does. The Python
# installation itself is not touched. The results, results/gpu/<gpu>/, are packed into
# results/gpu/<gpu>.tar.gz. The exit code is bench.gpu_check's (2: it could not start).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${GPU_SITE:-.gpu-site}
WHEELS=${GPU_WHEELS:-.whl}

wheels=($(ls "$WHEELS"/*.whl .whl-quack/*.whl 2>/dev/null))
if [ ${#wheels[@]} -gt 0 ]; then
    "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --upgrade \
        --target "$SITE" "${wheels[@]}" || { echo "error: installing the wheels of $WHEELS/ failed" >&2; exit 2; }
    printf 'import os, site\nsite.addsitedir(os.path.dirname(os.path.abspath(__file__)))\n' \
        > "$SITE/sitecustomize.py"
else
    echo "gpu_run: no wheels in $WHEELS/ (make gpu-wheels); using what is installed" >&2
fi
export PYTHONPATH="$PWD/$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d data/tiktoken ] || echo "gpu_run: data/ holds no tokenizer files (make install; make data)" >&2

rm -f results/gpu/last-run
"$PY" -m bench.gpu_check "$@"
rc=$?

if [ -f results/gpu/last-run ]; then
    out=$(cat results/gpu/last-run)
    archive="$out.tar.gz"
    tar -czf "$archive" -C "$(dirname "$out")" "$(basename "$out")" &&
        echo "gpu_run: packed $out into $archive"
fi
exit $rc
