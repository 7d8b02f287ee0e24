"""The project's import graph: no cycles (counting imports inside functions too), and the
library never imports the harness."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGES = ("ffn_variants", "harness", "sweep", "bench", "hydra_plugins")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py") if p.is_file()
    }


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in its body (a `from pkg import mod` counts as
    importing pkg.mod where that is a module, else pkg)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    # importing a.b.c runs a and a.b first; only the named module counts as the edge here
    return {m for m in out if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path a -> ... -> a, or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    f = tmp_path / "pkg" / "mod.py"
    f.write_text("def f():\n    from pkg import other\n    from . import third\n")
    known = {"pkg", "pkg.mod", "pkg.other", "pkg.third"}
    assert imports_of(f, "pkg.mod", known) == {"pkg.other", "pkg.third"}


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_library_imports_no_harness_code():
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("ffn_variants"):
            outside = {d for d in deps if not d.startswith("ffn_variants")}
            assert not outside, f"{name} imports {outside}"


def test_the_report_imports_no_benchmark_and_no_module_imports_anothers_private_names():
    """sweep/ (the report) stands below bench/ (the benchmarks): what both need lives in sweep or
    lower. No module imports a leading-underscore name from another project module."""
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("sweep"):
            assert not {d for d in deps if d.startswith("bench")}, f"{name} imports {deps}"
    known = set(project_modules())
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "") in known:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{name} imports {private} from {node.module}"


def _calls_in(path: Path) -> set[str]:
    """The dotted names called in `path` (torch.compile, DistributedDataParallel, ...)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            out.add(ast.unparse(node.func))
    return out


def test_one_place_decides_how_a_model_runs():
    """Compiling a model, wrapping it in DDP and the Dynamo limits: harness.prepare alone (bench/
    kernels.py compiles a bare function to time against, not a model); every model-building
    trainer or benchmark prepares through it, and none builds a TrainStep or decoder of its own."""
    deciders = {"torch.compile", "DistributedDataParallel"}
    for name, path in project_modules().items():
        if name.startswith("ffn_variants") or name in ("harness.prepare", "bench.kernels"):
            continue
        assert not deciders & _calls_in(path), name
    for name in ("harness.trainer", "bench.throughput", "bench.telemetry", "bench.inference"):
        calls = _calls_in(project_modules()[name])
        assert "prepare" in calls and "GPT" in calls, name
    for name in ("harness.trainer", "bench.throughput", "bench.telemetry"):
        assert "TrainStep.of" in _calls_in(project_modules()[name]), name
    assert "Decoder" in _calls_in(project_modules()["bench.inference"])


def test_the_launchers_share_one_skeleton():
    from hydra_plugins.ffn_variants_launcher.job import SweepLauncher
    from hydra_plugins.ffn_variants_launcher.pool_launcher import PoolLauncher
    from hydra_plugins.ffn_variants_launcher.ray_launcher import RaySweepLauncher

    for launcher in (PoolLauncher, RaySweepLauncher):
        assert issubclass(launcher, SweepLauncher)
        own = set(vars(launcher)) - {"__module__", "__doc__", "__init__", "name", "absolute_dirs"}
        assert "launch" not in own and "setup" not in own and "dispatch" in own


def test_the_trainer_sets_every_attribute_in_init():
    """A reader finds what a Trainer holds in __init__: no attribute first set elsewhere."""
    tree = ast.parse((REPO / "harness" / "trainer.py").read_text(encoding="utf-8"))
    (trainer,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer"]
    assigned: dict[str, set[str]] = {}
    for method in trainer.body:
        if isinstance(method, ast.FunctionDef):
            for node in ast.walk(method):
                targets = node.targets if isinstance(node, ast.Assign) else []
                targets = [node.target] if isinstance(node, ast.AnnAssign) else targets
                for target in [t for tg in targets for t in ast.walk(tg)]:
                    if isinstance(target, ast.Attribute) and ast.unparse(target.value) == "self":
                        assigned.setdefault(method.name, set()).add(target.attr)
    in_init = assigned.pop("__init__")
    later = set().union(*assigned.values()) - in_init
    assert not later, f"set outside __init__ first: {sorted(later)}"
    assert trainer.end_lineno - trainer.lineno < 300
