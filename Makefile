# ffn-variants: every target runs in the current Python environment.
PYTHON ?= python
FFN ?= swiglu
MODEL ?= tiny
EXPERIMENT ?= glu_table
BASELINES ?= relu relu2
LAUNCHER ?= basic
# make tune: the lr grid (TUNE_POINTS rates TUNE_FACTOR apart, centred on the experiment's
# optim.lr, or TUNE_GRID=1e-3,2e-3,... as given) and its seeds, disjoint from the sweeps' seeds
# (0-4) and judged on the held-out split's tuning slice; make sweep TUNED=<tuned.yaml>
TUNE_POINTS ?= 5
TUNE_FACTOR ?= 1.4142135623730951
TUNE_SEEDS ?= 100,101
TUNE_GRID ?=
TUNED ?=
# The optimizer (configs/optim/): adamw or muon; make tune and make sweep pass it on
OPTIM ?= adamw
OPTIM_ARG = optim=$(OPTIM)
OPTIM_TAG = $(if $(filter-out adamw,$(OPTIM)),_$(OPTIM))
# Your own config files (configs/ffn/<your ffn>.yaml, configs/experiment/<yours>.yaml) on Hydra's
# search path: make tune EXPERIMENT=mine CONFIG_DIR=my_configs (docs/extending.md)
CONFIG_DIR ?=
SEARCH = $(if $(CONFIG_DIR),"hydra.searchpath=[file://$(abspath $(CONFIG_DIR))]")
TUNE_DIR := multirun/$(EXPERIMENT)$(OPTIM_TAG)_tune/$(shell date +%Y-%m-%d_%H-%M-%S)
# make report: the newest sweep of EXPERIMENT when it is given, else the newest sweep of any
REPORT_EXPERIMENT = $(if $(filter file,$(origin EXPERIMENT)),*,$(EXPERIMENT))
SWEEP_DIR ?= $(shell ls -dt multirun/$(REPORT_EXPERIMENT)/*/ 2>/dev/null | head -n 1)

.PHONY: peak install install-ray data train help test test-ray tune sweep report dashboard sample sizes bench bench-kernels bench-telemetry bench-parallel bench-throughput bench-inference gpu-check gpu-run gpu-wheels plot-activations lint format

.DEFAULT_GOAL := help

help:  ## this list
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 18

install:  ## torch first (pinned: a CPU build here; an unpinned one pulls GBs of CUDA), then the rest; then the GPT-2 BPE ranks and the built-in corpus into data/ (the tests need no network after this)
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e ".[dev,sweep,kernels,wandb]"
	$(PYTHON) -m harness.tools.fetch_sources

data:  ## tokenize the built-in corpus once (later runs reuse the cache in data/)
	$(PYTHON) -m harness.tools.prepare_data

train:  ## one run: make train FFN=geglu
	$(PYTHON) train.py ffn=$(FFN) model=$(MODEL)

install-ray:  ## the `ray` extra for hydra/launcher=ray_local|ray_cluster (~240 MB; not in make install)
	$(PYTHON) -m pip install -e ".[ray]"

test:  ## the test suite (minutes on 2 CPU cores); the Ray tests are make test-ray's
	$(PYTHON) -m pytest -q -m "not ray"

test-ray:  ## the Ray launcher's tests (needs make install-ray; starts and stops Ray, ~2 min)
	$(PYTHON) -m pytest -q -m ray tests/test_ray_launcher.py

tune:  ## stage 1: every variant (and size) of EXPERIMENT over an lr grid, 2 seeds, on the tuning slice -> results/<e>[_<optim>]_tune/tuned.yaml [OPTIM=adamw|muon TUNE_POINTS=5 TUNE_FACTOR=1.414 TUNE_SEEDS=100,101 TUNE_GRID=...]
	@grid="$(if $(TUNE_GRID),$(TUNE_GRID),$$($(PYTHON) -m sweep.tune --grid experiment=$(EXPERIMENT) $(OPTIM_ARG) $(SEARCH) --points $(TUNE_POINTS) --factor $(TUNE_FACTOR)))" && \
	test -n "$$grid" || exit 2; \
	echo "make tune: experiment=$(EXPERIMENT) $(OPTIM_ARG) optim.lr=$$grid seed=$(TUNE_SEEDS) -> $(TUNE_DIR)"; \
	$(PYTHON) train.py -m experiment=$(EXPERIMENT) $(OPTIM_ARG) hydra/launcher=$(LAUNCHER) $(SEARCH) "optim.lr=$$grid" \
		"seed=$(TUNE_SEEDS)" data.eval_slice=tune hydra.sweep.dir=$(TUNE_DIR); \
	rc=$$?; test $$rc -le 1 || exit $$rc; \
	$(PYTHON) -m sweep.tune $(TUNE_DIR) --name $(EXPERIMENT)$(OPTIM_TAG)_tune

sweep:  ## the experiment's sweep: make sweep [EXPERIMENT=scaling] [OPTIM=adamw|muon] [LAUNCHER=parallel|gpus] [TUNED=results/<e>_tune/tuned.yaml: each variant at its own tuned lr; a list [a,b] for experiment=contenders_optim]
	$(PYTHON) train.py -m experiment=$(EXPERIMENT) $(if $(filter contenders_optim,$(EXPERIMENT)),,$(OPTIM_ARG)) hydra/launcher=$(LAUNCHER) $(SEARCH) $(if $(TUNED),hydra.sweeper.tuned=$(TUNED))

report:  ## tables and plots for the newest sweep (of EXPERIMENT, if given) [SWEEP_DIR=...] [SHARED=<a shared-lr sweep>] [THROUGHPUT=<file>] [Y=bpb]
	@test -n "$(SWEEP_DIR)" || { echo "make report: no sweep under multirun/$(REPORT_EXPERIMENT)/; run make sweep first, or give SWEEP_DIR=<a sweep dir>" >&2; exit 2; }
	$(PYTHON) -m sweep.report $(SWEEP_DIR) $(foreach b,$(BASELINES),--baseline $(b)) $(if $(SHARED),--shared $(SHARED)) $(if $(THROUGHPUT),--throughput $(THROUGHPUT)) $(if $(Y),--y $(Y))

dashboard:  ## W&B workspace and Report of the newest sweep, as JSON specs under results/<name>/wandb/ [SWEEP_DIR=...] [SAVE=1: save them to W&B]
	@test -n "$(SWEEP_DIR)" || { echo "make dashboard: no sweep under multirun/$(REPORT_EXPERIMENT)/; run make sweep first, or give SWEEP_DIR=<a sweep dir>" >&2; exit 2; }
	$(PYTHON) -m sweep.dashboard $(SWEEP_DIR) $(if $(SAVE),--save)

sample:  ## text from a trained run: make sample RUN=<run dir> [PROMPT="ROMEO:"] [N=3]
	@test -n "$(RUN)" || { echo "make sample: give RUN=<a run dir or checkpoint>" >&2; exit 2; }
	$(PYTHON) -m harness.tools.sample $(RUN) $(if $(PROMPT),--prompt "$(PROMPT)") $(if $(N),--num-samples $(N))

plot-activations:  ## every variant's activation, its derivative and the gated products -> results/activations/
	$(PYTHON) -m harness.tools.plot_activations

peak:  ## calibrate this machine's peak matmul rate, the number MFU is measured against (on quiet cores; it is held until this runs again)
	$(PYTHON) -m harness.tools.peak

sizes:  ## the matched-parameter table: make sizes MODEL=small
	$(PYTHON) -m harness.tools.sizes model=$(MODEL)

bench:  ## every benchmark this machine can run (the kernel benchmark needs a CUDA GPU)
	@if $(PYTHON) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		$(MAKE) bench-kernels; else echo "bench: no CUDA GPU here; skipping bench-kernels"; fi
	$(MAKE) bench-telemetry bench-parallel

bench-kernels:  ## Triton vs eager vs torch.compile vs Liger (needs a CUDA GPU)
	$(PYTHON) -m bench.kernels

bench-parallel:  ## a 4-job sweep one after another vs with hydra/launcher=parallel -> results/parallel/
	$(PYTHON) -m bench.parallel_sweep --oversubscribed

gpu-check:  ## the acceptance run for a CUDA machine (~6 min): GPU tests, kernel benchmark, inference, trainings -> results/gpu/ [GPU_CHECK_ARGS=--full|--dry-run|--budget-s N]
	$(PYTHON) -m bench.gpu_check $(GPU_CHECK_ARGS)

gpu-run:  ## gpu-check on a bare offline GPU machine: wheels from .whl/ into .gpu-site/, then the run, packed into results/gpu/<gpu>.tar.gz
	PYTHON=$(PYTHON) bash bench/gpu_run.sh $(GPU_CHECK_ARGS)

gpu-wheels:  ## wheels an offline GPU machine needs for gpu-check (Python 3.12, x86_64, torch 2.11 cu130), resolved by pip for that platform, into .whl/; QUACK=1: QuACK's closure too, into .whl-quack/ (196 MB: too large to carry to a lent machine)
	$(PYTHON) -m bench.gpu_wheels --dest .whl
	$(PYTHON) -m bench.gpu_wheels --dest .whl --check
	$(if $(QUACK),$(PYTHON) -m bench.gpu_wheels --dest .whl-quack --quack && $(PYTHON) -m bench.gpu_wheels --dest .whl-quack --quack --check)

bench-throughput:  ## tokens/s and MFU of every variant and size of EXPERIMENT in one process, interleaved; run it with nothing else running -> results/<e>_throughput/
	$(PYTHON) -m bench.throughput experiment=$(EXPERIMENT)

bench-inference:  ## prefill latency, decode tokens/s and memory of every variant and size of EXPERIMENT, eager and compiled, interleaved; run it with nothing else running -> results/<e>_inference/
	$(PYTHON) -m bench.inference experiment=$(EXPERIMENT)

bench-telemetry:  ## the cost of gradient-norm and activation statistics per logged step
	$(PYTHON) -m bench.telemetry model=$(MODEL)

lint:  ## ruff: lint rules and formatting (make format applies the formatting)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format:  ## apply ruff's formatting
	$(PYTHON) -m ruff format .
