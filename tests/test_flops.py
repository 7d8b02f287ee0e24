"""Model FLOPs: the count from the model's own matmuls against PyTorch's FlopCounterMode, and MFU.

FlopCounterMode counts the matmul-class ops (mm, addmm, bmm, attention) of an actual forward and
backward pass, run here on the meta device (shapes only, no compute). Neither count includes
elementwise work (activations, norms, softmax, the loss), so the two agree to the FLOP: the test
allows 2% and asserts the remainder is below 0.1%.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ffn_variants.resolved import FFNSpec
from harness.mfu import PEAK_BF16_TFLOPS, Peak, device_peak, mfu, table_peak
from tests.helpers.ffn_formulas import BUILTINS
from tests.helpers.models import MODEL_CONFIGS, build_gpt, model_config


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_training_flops_per_token_match_the_flop_counter(name, path):
    cfg = model_config(path)
    with torch.device("meta"):
        model = build_gpt(cfg, FFNSpec(name=name, impl="torch"))
        x = torch.randint(0, cfg.vocab_size, (2, cfg.block_size))
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        loss.backward()
    counted = counter.get_total_flops() / x.numel()
    ours = model.flops_per_token()
    assert ours["train"] == pytest.approx(counted, rel=0.02)
    assert abs(ours["train"] / counted - 1) < 1e-3  # the remainder: rounding only
    assert 0 < ours["ffn_share"] < 1


def test_the_parts_of_the_count():
    with torch.device("meta"):
        cfg = model_config(MODEL_CONFIGS[0])
        gated, dense = (build_gpt(cfg, FFNSpec(name=n)) for n in ("swiglu", "relu"))
    d, L, T, V = cfg.d_model, cfg.n_layer, cfg.block_size, cfg.vocab_size
    # 6 x (attention projections + gated FFN's three matrices + LM head) + 12 L d T.
    matmul = L * (4 * d * d + 3 * d * gated.ffn.d_ff) + d * V
    assert gated.flops_per_token()["train"] == 6 * matmul + 12 * L * d * T
    share = 2 * L * 2 * d * dense.ffn.d_ff / dense.flops_per_token()["total"]
    assert dense.flops_per_token()["ffn_share"] == pytest.approx(share)


def test_peak_table_names():
    assert table_peak("NVIDIA H100 80GB HBM3") == ("H100", 989.0)
    assert table_peak("NVIDIA H100 PCIe") == ("H100 PCIe", 756.0)
    assert table_peak("NVIDIA H100 NVL") == ("H100 NVL", 835.0)
    assert table_peak("NVIDIA H200") == ("H200", 989.0)
    assert table_peak("NVIDIA H200 NVL") == ("H200 NVL", 835.0)
    assert table_peak("NVIDIA A100-SXM4-80GB") == ("A100", 312.0)
    assert table_peak("NVIDIA L40S") == ("L40S", 362.0)
    assert table_peak("NVIDIA L4") == ("L4", 121.0)
    assert table_peak("NVIDIA GeForce RTX 4090") == ("RTX 4090", 165.2)
    assert table_peak("NVIDIA B200") == ("B200", 2250.0)
    assert table_peak("Tesla T4") is None
    assert len(PEAK_BF16_TFLOPS) == 10


def test_a_cpu_gets_a_measured_peak():
    peak = device_peak(torch.device("cpu"), torch.float32)
    from harness.mfu import cpu_model

    assert peak.source.startswith(f"calibrated: {cpu_model()} float32 matmul, best of")
    assert 1e8 < peak.flops < 1e14  # a few cores: between 0.1 GFLOP/s and 100 TFLOP/s
    utilisation, tflops = mfu(1000.0, 6e9, Peak(2e13, "test"))
    assert utilisation == pytest.approx(0.3) and tflops == pytest.approx(6.0)
