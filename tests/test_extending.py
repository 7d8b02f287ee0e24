"""A user's own FFN through the public path: registration, counting, matching, telemetry, the
command line (ffn=custom ffn.target=..., --config-dir) and the report; and the built-ins' counts
equal to their closed formulas (tests/helpers/ffn_formulas.py, the oracle)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch

from ffn_variants import build_ffn, register_ffn
from ffn_variants.counting import count_flops, count_params
from ffn_variants.model import GPTConfig
from ffn_variants.registry import VARIANTS, variant_from_target
from ffn_variants.resolved import FFNSpec
from ffn_variants.sizing import Match, matched_d_ff
from ffn_variants.telemetry import activation_stats, grad_norms, telemetry_gaps
from tests.helpers import REPO, fresh_cache, run_train, tiny_overrides
from tests.helpers.ffn_formulas import BUILTINS, formula_d_ff, formula_flops, formula_params
from tests.helpers.models import MODEL_CONFIGS, build_gpt, model_config

USER_DIR = REPO / "tests" / "fixtures" / "user_ffn"
SHAPES = [(10, 40), (7, 13), (33, 97)]
TINY = GPTConfig(n_layer=2, n_head=2, d_model=32, d_ff=128, block_size=16, vocab_size=64)


@pytest.fixture
def user_module(monkeypatch):
    """The fixture's user_ffns module importable, as from the directory a run starts in."""
    monkeypatch.syspath_prepend(str(USER_DIR))
    yield
    sys.modules.pop("user_ffns", None)


@pytest.fixture
def registered():
    """Names registered during a test leave the registry afterwards."""
    before = dict(VARIANTS)
    yield
    VARIANTS.clear()
    VARIANTS.update(before)


# ------------------------------------------------------------------ counting == the formulas


@pytest.mark.parametrize("name", BUILTINS)
def test_counted_params_and_flops_equal_the_formulas(name):
    for d_model, d_ff in SHAPES:
        for bias in (False, True):
            assert count_params(name, d_model, d_ff, bias) == formula_params(
                name, d_model, d_ff, bias
            )
        assert count_flops(name, d_model, d_ff).total == formula_flops(name, d_model, d_ff)


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("match", ["params", "flops"])
def test_matched_widths_equal_the_formula_widths(path, match):
    cfg = model_config(path)
    for name in BUILTINS:
        counted = matched_d_ff(name, cfg.d_model, cfg.d_ff, cfg.multiple_of, match)
        assert counted == formula_d_ff(name, cfg.d_model, cfg.d_ff, cfg.multiple_of, match), name


def test_matmul_flops_are_what_the_flop_counter_counts():
    counted = count_flops("swiglu", 32, 86)
    assert counted.matmul == 2 * 3 * 32 * 86  # W, V and W2: what MFU counts
    assert counted.elementwise == 86 * (4 + 1)  # SiLU and the product


# ------------------------------------------------------------------ registration from Python


def test_a_registered_module_is_built_matched_and_trained_like_a_builtin(user_module, registered):
    from user_ffns import SquaredGate

    register_ffn("squared_gate", SquaredGate, power=3.0)
    ffn = build_ffn("squared_gate", 16, 24)
    assert isinstance(ffn, SquaredGate) and ffn.power == 3.0
    model = build_gpt(TINY, FFNSpec(name="squared_gate"))
    dense = build_gpt(TINY, FFNSpec(name="relu"))
    assert model.ffn.d_ff == 86  # the 2/3 rule, found by counting (the scale counts: +1 per layer)
    ratio = model.param_counts()["ffn"] / dense.param_counts()["ffn"]
    assert abs(ratio - 1) <= 0.01
    x = torch.randint(0, 64, (2, 16))
    _, loss = model(x, x)
    loss.backward()
    assert torch.isfinite(loss)


def test_registering_a_taken_name_is_refused(user_module, registered):
    from user_ffns import SquaredGate

    with pytest.raises(ValueError, match="built-in"):
        register_ffn("swiglu", SquaredGate)
    register_ffn("mine", SquaredGate)
    with pytest.raises(ValueError, match="already registered"):
        register_ffn("mine", SquaredGate)
    register_ffn("mine", SquaredGate, replace=True, power=1.0)
    assert VARIANTS["mine"].kwargs["power"] == 1.0


@pytest.mark.parametrize("match", ["params", "flops"])
def test_matched_within_one_percent_by_counting(user_module, match):
    variant = variant_from_target("sq", "user_ffns:SquaredGate")
    d_ff = matched_d_ff(variant, 128, 512, 8, match)
    mine = (
        count_params(variant, 128, d_ff) if match == "params" else count_flops(variant, 128, d_ff)
    )
    ref = count_params("relu", 128, 512) if match == "params" else count_flops("relu", 128, 512)
    if match == "flops":
        mine, ref = mine.total, ref.total
    assert abs(mine / ref - 1) <= 0.01 and d_ff % 4 == 0  # 8, or half of it where 8 misses


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module:F", "cannot import no_such_module"),
        ("user_ffns:Missing", "has no 'Missing'"),
        ("user_ffns:one_argument", "cannot be called as f(d_model, d_ff)"),
        ("user_ffns:FixedWidth", "(user_ffns:FixedWidth) cannot be matched on params"),
    ],
)
def test_bad_targets_are_one_line_value_errors(user_module, target, message):
    with pytest.raises(ValueError) as e:
        FFNSpec(name="x", target=target)
        build_gpt(TINY, FFNSpec(name="x", target=target))
    assert message in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------ telemetry protocol


def test_a_declared_gated_module_logs_like_a_builtin(user_module):
    model = build_gpt(TINY, FFNSpec(name="sq", target="user_ffns:SquaredGate"))
    assert telemetry_gaps(model.blocks[0].ffn) == []
    with activation_stats(model) as stats:
        model(torch.randint(0, 64, (2, 16)))
    for part in ("gate/rms", "value/rms", "product/kurtosis", "gate_value/alignment"):
        assert f"act/L1/{part}" in stats, sorted(stats)
    # w_out is the residual output: the GPT's depth-scaled init reached it
    assert model.blocks[0].ffn.w_out.weight.std() < 0.02 / 1.5


def test_an_undeclared_module_trains_and_says_what_it_cannot_log(user_module):
    model = build_gpt(TINY, FFNSpec(name="plain", target="user_ffns:Undeclared"))
    gaps = telemetry_gaps(model.blocks[0].ffn)
    assert len(gaps) == 1 and "Undeclared declares no w_out" in gaps[0]
    x = torch.randint(0, 64, (2, 16))
    with activation_stats(model) as stats:
        _, loss = model(x, x)
    assert not [k for k in stats if k.startswith("act/")]
    loss.backward()
    assert grad_norms(model)["grad_norm/ffn"] > 0


def test_impl_compile_compiles_any_module(user_module):
    variant = variant_from_target("sq", "user_ffns:SquaredGate")
    torch.manual_seed(0)
    eager = build_ffn(variant, 8, 6)
    compiled = build_ffn(variant, 8, 6, impl="compile")
    compiled.load_state_dict(eager.state_dict())
    assert compiled._compiled_call_impl is not None  # nn.Module.compile: forward compiled
    x = torch.randn(3, 8)
    torch.testing.assert_close(compiled(x), eager(x))


# ------------------------------------------------------------------ train.py, sweep, report


def _user_dir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(USER_DIR, work)
    return work


def test_command_line_target_trains_a_matched_telemetered_run(token_cache, tmp_path):
    work, run_dir = _user_dir(tmp_path), tmp_path / "run"
    args = [
        "ffn=custom",
        "ffn.target=user_ffns:SquaredGate",
        "ffn.name=squared_gate",
        "+ffn.kwargs.power=1.5",
        *tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=4),
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_train(args, cwd=work)  # user_ffns imports from where the command starts
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["variant"] == "squared_gate" and summary["status"] == "completed"
    dense = formula_params("relu", 32, 128)
    assert abs(summary["params"]["ffn_per_layer"] / dense - 1) <= 0.01
    keys = set().union(*(json.loads(line) for line in (run_dir / "metrics.jsonl").open()))
    assert {"act/L0/product/kurtosis", "act/L0/gate/rms", "grad_norm/ffn"} <= keys


def test_config_dir_sweep_reaches_the_report_and_the_dashboard(token_cache, tmp_path):
    pytest.importorskip("wandb_workspaces")
    from sweep import dashboard, report

    work, sweep_dir, out = _user_dir(tmp_path), tmp_path / "sweep", tmp_path / "results"
    args = [
        "-m",
        "--config-dir",
        "configs",
        "ffn=relu,my_ffn",
        *tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=4),
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = run_train(args, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with redirect_stdout(io.StringIO()):
        assert report.main([str(sweep_dir), "--out", str(out), "--baseline", "my_ffn"]) == 0
        assert dashboard.main([str(sweep_dir), "--out", str(out)]) == 0
    (dest,) = [p for p in out.iterdir() if p.is_dir()]
    text = (dest / "report.md").read_text()
    assert "| my_ffn" in text and "| relu" in text
    specs = " ".join(p.read_text() for p in (dest / "wandb").glob("*.json"))
    assert "my_ffn" in specs


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["ffn.target=no_such_module:F", "ffn.name=x"], "cannot import no_such_module"),
        (["ffn.target=user_ffns:one_argument", "ffn.name=x"], "cannot be called as"),
        (["ffn.target=user_ffns:FixedWidth", "ffn.name=x"], "does not grow with d_ff"),
        (["ffn.target=user_ffns:SquaredGate", "ffn.name=swiglu"], "is a built-in variant"),
        (["ffn.name=x"], "ffn.target="),
        (["ffn.target=user_ffns:WrongShape", "ffn.name=x"], "must return a tensor of its input's"),
        (["ffn.target=user_ffns:Raises", "ffn.name=x"], "raised RuntimeError: this FFN is not"),
        (["ffn.target=user_ffns:FutureConv", "ffn.name=x"], "reads later positions"),
    ],
    ids=[
        "no-import",
        "signature",
        "fixed-width",
        "builtin-name",
        "no-target",
        "shape",
        "raises",
        "sees-the-future",
    ],
)
def test_bad_user_ffn_is_one_line_exit_2_and_nothing_left(overrides, message, tmp_path):
    work = _user_dir(tmp_path)
    proc = run_train(["ffn=custom", *overrides, "hydra.run.dir=out/run"], cwd=work)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (work / "out").exists()


@pytest.mark.parametrize("match", ["params", "flops"])
def test_a_top1_mixture_of_experts_trains_matched(match, token_cache, tmp_path):
    """Routing (torch.nonzero) has no meta kernel: its FLOPs come from real forwards, as the
    active FLOPs per token (the router and one expert)."""
    work, run_dir = _user_dir(tmp_path), tmp_path / "run"
    args = [
        "ffn=custom",
        "ffn.target=user_ffns:MoE4",
        "ffn.name=moe4",
        f"ffn.match={match}",
        *tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=2),
        "model.d_ff=512",  # 4 experts share the dense parameters: room to match within 1%
        "logger.mode=disabled",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_train(args, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and "Traceback" not in proc.stderr
    d_ff, d_model = summary["params"]["d_ff"], 32
    active = 2 * d_model * 4 + 2 * (2 * d_model * d_ff)  # router + one expert, 2 per mul-add
    assert summary["flops_per_token"]["ffn"] >= active
    if match == "flops":  # the active FLOPs meet the dense reference's within 1%
        dense = formula_flops("relu", d_model, 512)
        assert abs(summary["flops_per_token"]["ffn"] / dense - 1) <= 0.01


def test_match_is_counted_for_the_reference_itself():
    assert matched_d_ff("relu", 64, 256, 8, Match.flops) == 256


# ------------------------------------------------------------------ docs/extending.md as written


def _doc_files(work: Path) -> list[str]:
    """Write every code block of docs/extending.md named by a '# <path>' line (first or second)
    to work/<path>;
    return the Python blocks that do not (the snippets to run)."""
    text = (REPO / "docs" / "extending.md").read_text()
    snippets = []
    for block in text.split("```")[1::2]:
        lang, _, body = block.partition("\n")
        named = [
            line[2:].split()[0]
            for line in body.splitlines()[:2]
            if line.startswith("# ") and line.split()[1].endswith((".py", ".yaml"))
        ]
        if named:
            path = work / named[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        elif lang == "python":
            snippets.append(body)
    return snippets


def test_the_docs_example_runs_as_written(token_cache, tmp_path):
    work = tmp_path / "work"
    snippets = _doc_files(work)
    assert (work / "my_ffn.py").is_file() and (work / "my_configs/experiment/mine.yaml").is_file()
    lines = (work / "my_ffn.py").read_text().splitlines()
    assert len(lines) <= 30
    run_dir = tmp_path / "run"
    cache = fresh_cache(token_cache, tmp_path / "cache")
    proc = run_train(
        ["--config-dir", "my_configs", "ffn=normed_swiglu", *tiny_overrides(cache, steps=2)]
        + [f"hydra.run.dir={run_dir}"],
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["variant"] == "normed_swiglu"
    # the experiment composes through the search path the Makefile's CONFIG_DIR gives
    grid = subprocess.run(
        [sys.executable, "-m", "sweep.tune", "--grid", "experiment=mine"]
        + [f"hydra.searchpath=[file://{work / 'my_configs'}]"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert grid.returncode == 0 and grid.stdout.count(",") == 4, grid.stderr
    (python_snippet,) = snippets  # the "from Python" block, in the user's directory
    code = f"import sys; sys.path.insert(0, {str(work)!r})\n{python_snippet}\nprint(d_ff)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.split()[-1] == "2048", out.stderr


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["ffn=swiglu", "ffn.impl=quack"], "ffn.impl=quack runs on CUDA GPUs of compute"),
        (["ffn=geglu", "ffn.impl=quack"], "ffn.impl=quack has no epilogue for this variant"),
        (["ffn=polynorm", "ffn.impl=quack"], "ffn.impl=quack: the fused kernels are for the"),
        (["ffn=swiglu", "ffn.impl=quack", "ffn.bias=true"], "ffn.impl=quack trains without bias"),
    ],
    ids=["no-gpu", "unsupported-activation", "no-impl", "bias"],
)
def test_impl_quack_where_it_cannot_run_is_one_line_exit_2(
    overrides, message, token_cache, tmp_path
):
    args = [*overrides, *tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=2)]
    proc = run_train([*args, "hydra.run.dir=out/run"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
