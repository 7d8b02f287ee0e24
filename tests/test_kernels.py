"""Fused gated-activation kernels against the float64 PyTorch reference.

Without CUDA the kernels run on CPU through the Triton interpreter. Triton fixes interpreted vs
compiled when `@triton.jit` runs, i.e. when ffn_variants.kernels is first imported, so the
variable is set here, before that import; if something imported the kernels earlier in the same
process, the kernel tests skip and say so.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402

import pytest  # noqa: E402

from bench import kernel_cases as cases  # noqa: E402
from bench import kernels as bench  # noqa: E402
from ffn_variants.activations import ACTIVATIONS, gated_torch, gated_torch_packed  # noqa: E402
from ffn_variants.kernels import (  # noqa: E402
    HAS_TRITON,
    KERNEL_ACTIVATIONS,
    gated_activation,
    gated_activation_packed,
    kernels_interpreted,
    triton_available,
)

DEVICE = "cuda" if torch.cuda.is_available() and not kernels_interpreted() else "cpu"

if not HAS_TRITON:
    _SKIP_REASON = "triton is not installed"
else:
    _SKIP_REASON = (
        "ffn_variants.kernels was imported before TRITON_INTERPRET=1 was set (by an earlier "
        "test module?), so its kernels are compiled-only and cannot run on CPU; set the variable "
        "in tests/conftest.py when CUDA is absent"
    )
_skip_without_kernels = pytest.mark.skipif(not triton_available(DEVICE), reason=_SKIP_REASON)


def needs_kernels(test):
    """A test that runs the kernels: on the GPU where there is one (the `gpu` mark: make
    gpu-check runs it), else under the interpreter; skipped where neither can run them."""
    return pytest.mark.gpu(_skip_without_kernels(test))


if HAS_TRITON:
    from ffn_variants.kernels import gated

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# The kernels round once (fp32 math, one cast at the store), so each output is within half an
# ulp of the exact value plus fp32 noise (more on GPU, where exp is approximate); the
# interpreter truncates fp32 -> bf16 instead of rounding, hence bf16's full-ulp rtol. atol
# covers fp16 subnormals and values that cancel to ~0 (e.g. gelu's derivative at its minimum).
TOLERANCES = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float16: {"rtol": 2**-10, "atol": 1e-5},
    torch.bfloat16: {"rtol": 2**-7, "atol": 1e-5},
}


def _randn(*shape: int, dtype: torch.dtype, seed: int, scale: float = 2.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * scale
    return x.to(dtype=dtype, device=DEVICE)


def _leaf(*shape: int, dtype: torch.dtype, seed: int, zeros: bool = False) -> torch.Tensor:
    x = _randn(*shape, dtype=dtype, seed=seed)
    if zeros:
        x[..., ::4] = 0.0
    return x.requires_grad_()


# (gate, value, grad_out) builders; gate/value may be views of leaves, in the layouts callers
# produce: odd F, ragged blocks, 3-D, transposed (copy path), row-strided (zero-copy path).
PAIR_CASES = {
    # Exact zeros in the gate: relu's derivative at 0 is 0, as in PyTorch.
    "2d_F37": lambda dt: (
        _leaf(3, 37, dtype=dt, seed=1, zeros=True),
        _leaf(3, 37, dtype=dt, seed=2),
        _randn(3, 37, dtype=dt, seed=3),
    ),
    "2d_F7": lambda dt: (
        _leaf(9, 7, dtype=dt, seed=4),
        _leaf(9, 7, dtype=dt, seed=5),
        _randn(9, 7, dtype=dt, seed=6),
    ),
    "2d_F1000": lambda dt: (
        _leaf(4, 1000, dtype=dt, seed=7),
        _leaf(4, 1000, dtype=dt, seed=8),
        _randn(4, 1000, dtype=dt, seed=9),
    ),
    "3d_F129": lambda dt: (
        _leaf(2, 5, 129, dtype=dt, seed=10),
        _leaf(2, 5, 129, dtype=dt, seed=11),
        _randn(2, 5, 129, dtype=dt, seed=12),
    ),
    "transposed": lambda dt: (
        _leaf(37, 6, dtype=dt, seed=13).t(),
        _leaf(37, 6, dtype=dt, seed=14).t(),
        _randn(37, 6, dtype=dt, seed=15).t(),
    ),
    "row_strided": lambda dt: (
        _leaf(6, 258, dtype=dt, seed=16)[:, :129],
        _leaf(6, 258, dtype=dt, seed=17)[:, 129:],
        _randn(6, 258, dtype=dt, seed=18)[:, ::2],
    ),
    "noncollapsible_3d": lambda dt: (
        _leaf(2, 6, 37, dtype=dt, seed=19)[:, :5],
        _leaf(2, 6, 37, dtype=dt, seed=20)[:, 1:],
        _randn(2, 5, 37, dtype=dt, seed=21),
    ),
}

PACKED_CASES = {
    "3d_F129": lambda dt: (
        _leaf(2, 5, 258, dtype=dt, seed=30),
        _randn(2, 5, 129, dtype=dt, seed=31),
    ),
    # Row stride 77 and an odd storage offset: the halves are unaligned strided views.
    "row_strided_F37": lambda dt: (
        _leaf(7, 77, dtype=dt, seed=32)[:, 1:75],
        _randn(7, 37, dtype=dt, seed=33),
    ),
    "transposed_F37": lambda dt: (
        _leaf(74, 4, dtype=dt, seed=34).t(),
        _randn(4, 37, dtype=dt, seed=35),
    ),
}


def _reference(fn, inputs, grad_out, activation):
    """Output and gradients of `fn` in float64 on the same (rounded) inputs."""
    ref_in = [t.detach().double().requires_grad_() for t in inputs]
    out = fn(*ref_in, activation)
    grads = torch.autograd.grad(out, ref_in, grad_out.double())
    return out, grads


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    assert actual.dtype == dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual.double(), expected, **TOLERANCES[dtype])


# ---------------------------------------------------------------------------------------------
# Names and errors
# ---------------------------------------------------------------------------------------------


def test_kernel_activations_cover_the_glu_family():
    assert set(KERNEL_ACTIVATIONS) <= set(ACTIVATIONS)
    assert {"silu", "gelu", "gelu_tanh", "relu", "sigmoid", "identity"} <= set(KERNEL_ACTIVATIONS)


def test_unknown_activation_lists_the_known_ones():
    x = torch.randn(2, 8)
    for call in (
        lambda: gated_activation(x[:, :4], x[:, 4:], "swish"),
        lambda: gated_activation_packed(x, "swish"),
    ):
        with pytest.raises(ValueError, match="unknown activation 'swish'") as err:
            call()
        for name in KERNEL_ACTIVATIONS:
            assert name in str(err.value)


@needs_kernels
def test_bad_inputs_raise():
    x = torch.randn(3, 8, device=DEVICE)
    with pytest.raises(ValueError, match="same shape"):
        gated_activation(x, x[:, :4], "silu")
    with pytest.raises(ValueError, match="same shape"):
        gated_activation(x, x.double(), "silu")
    with pytest.raises(ValueError, match="even last dim"):
        gated_activation_packed(x[:, :7], "silu")
    with pytest.raises(TypeError, match="float16, bfloat16"):
        gated_activation(x.int(), x.int(), "silu")


@needs_kernels
def test_empty_inputs():
    gate = torch.randn(0, 5, 16, device=DEVICE, requires_grad=True)
    out = gated_activation(gate, gate.detach(), "silu")
    assert out.shape == (0, 5, 16)
    (d_packed,) = torch.autograd.grad(gated_activation_packed(gate, "gelu").sum(), gate)
    assert d_packed.shape == gate.shape


# ---------------------------------------------------------------------------------------------
# Forward and backward against float64
# ---------------------------------------------------------------------------------------------


@needs_kernels
@pytest.mark.parametrize("case", list(PAIR_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS)
def test_pair_matches_float64(activation, dtype, case):
    gate, value, grad_out = PAIR_CASES[case](dtype)
    out = gated_activation(gate, value, activation)
    d_gate, d_value = torch.autograd.grad(out, (gate, value), grad_out)

    ref, (ref_gate, ref_value) = _reference(gated_torch, (gate, value), grad_out, activation)
    _assert_close(out, ref, dtype)
    _assert_close(d_gate, ref_gate, dtype)
    _assert_close(d_value, ref_value, dtype)


@needs_kernels
@pytest.mark.parametrize("case", list(PACKED_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS)
def test_packed_matches_float64(activation, dtype, case):
    packed, grad_out = PACKED_CASES[case](dtype)
    out = gated_activation_packed(packed, activation)
    (d_packed,) = torch.autograd.grad(out, packed, grad_out)

    ref, (ref_packed,) = _reference(gated_torch_packed, (packed,), grad_out, activation)
    _assert_close(out, ref, dtype)
    _assert_close(d_packed, ref_packed, dtype)


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS)
def test_packed_and_pair_agree_exactly(activation, dtype):
    # Same kernel, same math, same tiles: the two forms must agree bit for bit.
    packed = _leaf(2, 5, 2 * 129, dtype=dtype, seed=40)
    grad_out = _randn(2, 5, 129, dtype=dtype, seed=41)
    out_packed = gated_activation_packed(packed, activation)
    (d_packed,) = torch.autograd.grad(out_packed, packed, grad_out)

    gate, value = packed.detach().chunk(2, dim=-1)
    gate, value = gate.contiguous().requires_grad_(), value.contiguous().requires_grad_()
    out_pair = gated_activation(gate, value, activation)
    d_gate, d_value = torch.autograd.grad(out_pair, (gate, value), grad_out)

    assert torch.equal(out_packed, out_pair)
    assert torch.equal(d_packed, torch.cat([d_gate, d_value], dim=-1))


def _kink_free(x: torch.Tensor) -> torch.Tensor:
    # relu/relu2 are not differentiable at 0; keep gradcheck's finite differences off the kink.
    return x + 0.1 * x.sign()


@needs_kernels
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS)
def test_gradcheck_pair(activation):
    gate = _kink_free(_randn(3, 7, dtype=torch.float64, seed=50, scale=1.5)).requires_grad_()
    value = _leaf(3, 7, dtype=torch.float64, seed=51)
    assert torch.autograd.gradcheck(
        lambda g, u: gated_activation(g, u, activation), (gate, value), eps=1e-6, atol=1e-7
    )


@needs_kernels
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS)
def test_gradcheck_packed(activation):
    packed = _randn(2, 3, 10, dtype=torch.float64, seed=52, scale=1.5)
    packed[..., :5] = _kink_free(packed[..., :5])
    packed.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: gated_activation_packed(p, activation), (packed,), eps=1e-6, atol=1e-7
    )


# ---------------------------------------------------------------------------------------------
# Tiling, layout, memory
# ---------------------------------------------------------------------------------------------


@needs_kernels
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS)
def test_many_ragged_tiles(monkeypatch, activation):
    # Shrink the tiles so a small problem spans a 10 x 3 grid, ragged in rows and columns.
    monkeypatch.setattr(gated, "_TILE_ELEMS", 64)
    monkeypatch.setattr(gated, "_MAX_BLOCK_C", 16)
    monkeypatch.setattr(gated, "_MIN_BLOCK_C", 16)
    assert gated._tile_config(37, 45)[:2] == (4, 16)

    dtype = torch.float32
    gate, value = _leaf(37, 45, dtype=dtype, seed=60), _leaf(37, 45, dtype=dtype, seed=61)
    grad_out = _randn(37, 45, dtype=dtype, seed=62)
    out = gated_activation(gate, value, activation)
    d_gate, d_value = torch.autograd.grad(out, (gate, value), grad_out)
    ref, (ref_gate, ref_value) = _reference(gated_torch, (gate, value), grad_out, activation)
    _assert_close(out, ref, dtype)
    _assert_close(d_gate, ref_gate, dtype)
    _assert_close(d_value, ref_value, dtype)


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
@pytest.mark.parametrize("n_cols", [1, 7, 37, 129, 688, 1000, 1376, 2048, 2752, 11008, 14336])
@pytest.mark.parametrize("n_rows", [1, 3, 8192])
def test_tile_config(n_rows, n_cols):
    block_r, block_c, num_warps = gated._tile_config(n_rows, n_cols)
    for v in (block_r, block_c, num_warps):
        assert v > 0 and v & (v - 1) == 0  # powers of two (tl.arange, warps)
    assert block_c <= gated._MAX_BLOCK_C and block_r * block_c <= gated._TILE_ELEMS
    assert block_r <= max(1, 2 * n_rows) and num_warps <= 8
    assert -(-n_cols // block_c) <= 65535  # CUDA grid axis-1 limit
    if n_cols >= 688:  # the model and LLM widths: at most 1/16 of the lanes masked off
        padded = -(-n_cols // block_c) * block_c
        assert padded / n_cols - 1 <= 1 / 16


def _saved_by(call) -> list[torch.Tensor]:
    """The tensors autograd saves during call(), seen through the pack hook (grad_fn's
    saved_tensors is not readable for custom ops on every torch version)."""
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        call()
    return saved


@needs_kernels
def test_saves_only_the_inputs_and_reads_packed_in_place():
    gate, value = (
        _leaf(4, 10, dtype=torch.float32, seed=70),
        _leaf(4, 10, dtype=torch.float32, seed=71),
    )
    saved = _saved_by(lambda: gated_activation(gate, value, "silu"))
    assert [t.data_ptr() for t in saved] == [gate.data_ptr(), value.data_ptr()]

    base = _leaf(2, 3, 30, dtype=torch.float32, seed=72)
    packed = base[..., 2:22]  # row-strided view: must be read without a copy
    (saved_packed,) = _saved_by(lambda: gated_activation_packed(packed, "silu"))
    assert saved_packed.data_ptr() == packed.data_ptr()
    assert saved_packed.shape == packed.shape == (2, 3, 20)


@needs_kernels
@pytest.mark.parametrize("activation", ["silu", "gelu", "relu"])
def test_inplace_backward_overwrites_the_inputs_with_the_same_gradients(activation):
    """inplace_backward=True: the gradients land in the saved inputs' memory and equal the
    out-of-place ones; a second backward through the graph is refused (autograd's version
    counter sees the declared write), not silently wrong."""
    leaf = _leaf(3, 5, 74, dtype=torch.float32, seed=80)
    grad_out = _randn(3, 5, 37, dtype=torch.float32, seed=81)
    expected = torch.autograd.grad(gated_activation_packed(leaf * 1.0, activation), leaf, grad_out)

    packed = leaf * 1.0  # a non-leaf, like the FFN's projection output
    out = gated_activation_packed(packed, activation, inplace_backward=True)
    (d_packed,) = torch.autograd.grad(out, packed, grad_out, retain_graph=True)
    assert d_packed.data_ptr() == packed.data_ptr()
    torch.testing.assert_close(d_packed, expected[0], rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(out, packed, grad_out)

    gate, value = leaf[..., :37] * 1.0, leaf[..., 37:] * 1.0
    pair_expected = torch.autograd.grad(
        gated_activation(gate, value, activation), (gate, value), grad_out
    )
    out = gated_activation(gate, value, activation, inplace_backward=True)
    d_gate, d_value = torch.autograd.grad(out, (gate, value), grad_out)
    assert (d_gate.data_ptr(), d_value.data_ptr()) == (gate.data_ptr(), value.data_ptr())
    torch.testing.assert_close(d_gate, pair_expected[0], rtol=0, atol=0)
    torch.testing.assert_close(d_value, pair_expected[1], rtol=0, atol=0)


@needs_kernels
def test_offsets_beyond_int32():
    # Rows 2**30 elements apart starting 2**31 into the storage: row 2 sits 2**31 elements past
    # the base pointer, which wraps negative in int32 and would land on the sentinel at the
    # storage's start (a clean wrong answer, not a crash). 8 GiB of address space is reserved,
    # but only the touched pages become resident.
    n_cols, stride, offset = 40, 2**30, 2**31
    try:
        storage = torch.empty(offset + 2 * stride + 2 * n_cols, dtype=torch.float16, device=DEVICE)
    except (RuntimeError, MemoryError) as exc:
        pytest.skip(f"cannot reserve 8 GiB of address space: {exc}")
    storage[: 2 * n_cols] = 100.0  # sentinel for int32-wrapped reads
    gate = storage.as_strided((3, n_cols), (stride, 1), offset)
    value = storage.as_strided((3, n_cols), (stride, 1), offset + n_cols)
    with torch.no_grad():
        gate.copy_(_randn(3, n_cols, dtype=torch.float16, seed=80))
        value.copy_(_randn(3, n_cols, dtype=torch.float16, seed=81))
    gate.requires_grad_()
    value.requires_grad_()
    grad_out = _randn(3, n_cols, dtype=torch.float16, seed=82)

    out = gated_activation(gate, value, "silu")
    d_gate, d_value = torch.autograd.grad(out, (gate, value), grad_out)
    ref, (ref_gate, ref_value) = _reference(gated_torch, (gate, value), grad_out, "silu")
    _assert_close(out, ref, torch.float16)
    _assert_close(d_gate, ref_gate, torch.float16)
    _assert_close(d_value, ref_value, torch.float16)


# ---------------------------------------------------------------------------------------------
# Without Triton / without the interpreter (subprocesses: import-time behaviour)
# ---------------------------------------------------------------------------------------------


def _run_python(code: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# The ops' PyTorch path, on a CPU without the interpreter: the same function against the same
# float64 reference, forward and gradients, pair and packed, in-place and not.
PYTORCH_PATH_CHECK = """
import torch
import ffn_variants.kernels as k
from ffn_variants.activations import gated_torch

assert not k.triton_available("cpu")
# fp32 atol: d gelu/dg cancels to 0 near g = -0.75, and d_gate scales it by grad_out * value.
tol = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (2**-8, 1e-5), torch.float64: (1e-12, 1e-12)}
gen = torch.Generator().manual_seed(0)
for dtype, (rtol, atol) in tol.items():
    for act in k.KERNEL_ACTIVATIONS:
        base = (torch.randn(3, 5, 2 * 37, generator=gen, dtype=torch.float64) * 2).to(dtype)
        dout = torch.randn(3, 5, 37, generator=gen, dtype=torch.float64).to(dtype)
        ref_in = base.double().requires_grad_()
        ref = gated_torch(*ref_in.chunk(2, -1), act)
        (ref_grad,) = torch.autograd.grad(ref, ref_in, dout.double())
        for inplace in (False, True):
            leaf = base.clone().requires_grad_()
            packed = leaf * 1  # a non-leaf, as the FFN's projection output
            out = k.gated_activation_packed(packed, act, inplace_backward=inplace)
            (grad,) = torch.autograd.grad(out, packed, dout)
            torch.testing.assert_close(out.double(), ref, rtol=rtol, atol=atol)
            torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol, atol=atol)
            gate, value = (t.contiguous().requires_grad_() for t in base.chunk(2, -1))
            out = k.gated_activation(gate * 1, value * 1, act, inplace_backward=inplace)
            grads = torch.autograd.grad(out, (gate, value), dout)
            torch.testing.assert_close(out.double(), ref, rtol=rtol, atol=atol)
            grads = torch.cat(grads, -1).double()
            torch.testing.assert_close(grads, ref_grad, rtol=rtol, atol=atol)
try:
    k.gated_activation_packed(base, "nope")
    raise AssertionError("no error")
except ValueError as e:
    assert "unknown activation 'nope'" in str(e)
print("ok")
"""


def test_without_triton_the_ops_compute_the_same_function_in_pytorch():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    no_triton = 'import sys; sys.modules["triton"] = None  # as if not installed\n'
    _run_python(no_triton + "import bench.kernels\n" + PYTORCH_PATH_CHECK, env)


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_on_a_cpu_without_the_interpreter_the_ops_compute_it_in_pytorch():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    _run_python(
        "import ffn_variants.kernels as k\nassert not k.kernels_interpreted()\n"
        + PYTORCH_PATH_CHECK,
        env,
    )


# ---------------------------------------------------------------------------------------------
# Benchmark helpers (the benchmark itself needs CUDA)
# ---------------------------------------------------------------------------------------------


def test_bench_bytes_and_throughput():
    n, f = 8192, 11008
    assert cases.gated_bytes(n, f, 2) == 3 * n * f * 2
    assert cases.gated_bytes(n, f, 2, backward=True) == 8 * n * f * 2
    assert cases.gbps(3_000_000_000, 1.5) == pytest.approx(2000.0)
    assert cases.percent_of(1500.0, 3000.0) == pytest.approx(50.0)


def test_bench_shapes_and_slug():
    full = cases.bench_shapes(quick=False)
    assert {f for _, f in full} == {344, 1024, 2048, 2752, 11008, 14336, 32768}
    assert all(n == 8192 for n, _ in full)
    assert len(cases.bench_shapes(quick=True)) < len(full)
    assert cases.slugify("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert cases.slugify("  ") == "unknown"


def test_bench_markdown_report():
    meta = {
        "gpu": "Test GPU",
        "date": "2026-01-01T00:00:00+00:00",
        "torch": "2.x",
        "triton": "3.x",
        "liger_kernel": "not installed",
        "dtype": "bfloat16",
        "copy_gbps": 3000.0,
    }
    row = {
        "activation": "silu",
        "n_rows": 8192,
        "n_cols": 344,
        "impl": "triton (pair)",
        "fwd_device_ms": 0.04,
        "fwd_ms": 0.05,
        "fwd_gbps": 2000.0,
        "fwd_pct_copy": 66.7,
        "fwdbwd_device_ms": 0.1,
        "fwdbwd_ms": 0.12,
        "host_us": 45.0,
        "fwdbwd_gbps": 1900.0,
        "fwdbwd_pct_copy": 63.3,
        "fwd_peak_mib": 11.0,
        "fwdbwd_peak_mib": 33.0,
        "max_err": 0.0039,
    }
    missing = {**row, "impl": "liger", "fwd_ms": None, "max_err": None}
    text = cases.markdown_report(meta, [row, missing])
    lines = text.strip().splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 4  # header, rule, two rows
    assert len({ln.count("|") for ln in table}) == 1  # every row has the header's columns
    assert "| silu | 8192 x 344 | triton (pair) | 0.0400 | 0.0500 | 2000 | 66.7 |" in text
    assert "| 0.1000 | 0.1200 | 1900 | 63.3 | 45 |" in text
    assert "n/a" in table[3] and "Test GPU" in lines[0] and "3000 GB/s" in text


def test_bench_cli():
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--help"])
    assert exit_info.value.code == 0
    args = bench.parse_args(["--quick", "--out", "x"])
    assert args.quick and str(args.out) == "x"
    if not torch.cuda.is_available():
        assert bench.main(["--quick"]) == 2


def test_bench_cases_and_a_failing_implementation_loses_only_its_row(monkeypatch):
    assert cases.parse_case("silu:8192x1024") == ("silu", 8192, 1024)
    assert cases.case_name("gelu", 16384, 2048) == "gelu:16384x2048"
    args = bench.parse_args(["--case", "silu:8x16", "--case", "gelu:4x32", "--append"])
    assert bench.planned_cases(args) == [("silu", 8, 16), ("gelu", 4, 32)] and args.append
    with pytest.raises(SystemExit):
        bench.parse_args(["--case", "silu-8x16"])
    assert cases.moved_mb(16384, 2048) == {"fwd_mb": 201.326592, "fwdbwd_mb": 536.870912}

    def broken(g, u):
        raise RuntimeError("no kernel image for this device\nmore")

    impls = {"eager": ("pair", lambda g, u: gated_torch(g, u, "silu")), "liger": ("pair", broken)}
    monkeypatch.setattr(bench, "_implementations", lambda activation, liger: impls)
    times = {"fwd_ms": 1.0, "fwdbwd_ms": 3.0, "fwd_peak_mib": 1.0, "fwdbwd_peak_mib": 2.0}
    times |= {"fwd_device_ms": 0.5, "fwdbwd_device_ms": 1.5, "host_us": 40.0}
    monkeypatch.setattr(bench, "_measure", lambda fn, inputs, dout: dict(times))
    rows = bench.bench_case("silu", 8, 16, 1000.0, {}, torch.float32, device="cpu")
    assert [r["impl"] for r in rows] == ["eager", "liger"]
    assert rows[0]["error"] is None and rows[0]["fwd_ms"] == 1.0
    assert rows[0]["fwd_gbps"] == pytest.approx(cases.gbps(3 * 8 * 16 * 4, 0.5))  # device time
    assert rows[1]["error"] == "RuntimeError: no kernel image for this device"
    assert rows[1]["fwd_ms"] is None
    text = cases.markdown_report(
        {"gpu": "G", "date": "d", "torch": "t", "triton": "t", "liger_kernel": "l"}
        | {"dtype": "float32", "copy_gbps": 1000.0},
        rows,
    )
    assert "| RuntimeError: no kernel image for this device |" in text


@pytest.mark.parametrize("form", ["packed", "pair", "liger"])
def test_every_rival_times_over_inputs_in_storage_of_their_own(form):
    """The timing's rotated input sets: no two share a storage (a rival reading another set's
    storage would read it from L2, not memory), for every implementation's form alike."""
    from bench.kernels import rotated_inputs

    packed = torch.randn(8, 2 * 16)
    g, u = packed[:, :16].contiguous(), packed[:, 16:].contiguous()
    sets = rotated_inputs(form, packed, g, u, 4)
    ptrs = [t.untyped_storage().data_ptr() for s in sets for t in s]
    assert len(sets) == 4 and len(set(ptrs)) == len(ptrs)
    assert not {packed.untyped_storage().data_ptr(), g.untyped_storage().data_ptr()} & set(ptrs)
