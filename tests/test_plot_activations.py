"""make plot-activations: the curves come from the model's own modules and autograd."""

from __future__ import annotations

import pytest
import torch

from ffn_variants.activations import ACTIVATION_GRADS, get_activation
from harness.tools.plot_activations import curve, draw, product
from tests.helpers.ffn_formulas import BUILTINS, GATED, activation_of


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_curves_are_the_variant_functions_and_their_derivatives(name):
    x, y, dy = curve(name)
    activation = activation_of(name)
    if activation == "swish_beta":  # a learned beta, 1 at initialisation: Swish_1
        activation = "silu"
    torch.testing.assert_close(y, get_activation(activation)(x))
    away_from_kinks = x.abs() > 1e-3  # relu's derivative at 0 is a convention
    torch.testing.assert_close(
        dy[away_from_kinks], ACTIVATION_GRADS[activation](x)[away_from_kinks]
    )


@pytest.mark.parametrize("name", sorted(GATED))
def test_the_heat_map_is_act_of_g_times_u(name):
    axis, values = product(name, n=21)
    g, u = torch.meshgrid(axis, axis, indexing="xy")
    activation = activation_of(name)
    act = get_activation("silu" if activation == "swish_beta" else activation)
    torch.testing.assert_close(values, act(g) * u)


def test_the_page_is_drawn(tmp_path):
    path = draw(tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 50_000
