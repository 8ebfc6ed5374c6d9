"""Quantisation-aware training (recipe `quant`): fake-quantised layers, bit costs, training."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.ao.quantization import FakeQuantize, disable_fake_quant
from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize

from rsearch.spec.recipe import QuantConfig
from rsearch.train import fit
from rsearch.train.distributed import setup_distributed, teardown_distributed
from rsearch.train.loop import evaluate, run_epoch
from rsearch.train.measure import cost
from rsearch.train.quant import QuantConv2d, QuantLinear, quant_layers, quantise_model
from rsearch.train.session import build_session, read_checkpoint, restore, save_checkpoint
from tests.train.train_helpers import RecipeFactory


def _tiny() -> nn.Sequential:
    """conv 3->4 (first), conv 4->8, pooled, linear 8->10 (classifier)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


@pytest.mark.parametrize("method", ["minmax", "lsq"])
def test_weights_take_at_most_two_to_the_bits_values_per_channel(method: str) -> None:
    model = quantise_model(_tiny(), QuantConfig(weight_bits=2, act_bits=4, method=method))
    first, middle, last = (layer for _, layer in quant_layers(model))
    assert isinstance(first, QuantConv2d) and isinstance(last, QuantLinear)
    assert [(q.bits.weight, q.bits.act) for q in (first, middle, last)] == [(8, 8), (2, 4), (8, 8)]
    with torch.no_grad():
        weights = middle.weight_fake_quant(middle.weight)
    counts = [len(torch.unique(channel)) for channel in weights]
    assert max(counts) <= 2**2 and min(counts) >= 2  # quantised, not collapsed
    first_counts = [len(torch.unique(c)) for c in first.weight_fake_quant(first.weight).detach()]
    assert max(first_counts) <= 2**8 and max(first_counts) > 2**2  # 27 weights, 8 bits: all kept
    expected = FakeQuantize if method == "minmax" else _LearnableFakeQuantize
    assert isinstance(middle.weight_fake_quant, expected)
    assert (middle.weight_fake_quant.quant_min, middle.weight_fake_quant.quant_max) == (-2, 1)
    assert isinstance(middle.input_fake_quant, expected)
    assert middle.input_fake_quant.quant_max == 15


def test_first_and_last_layers_full_precision_when_asked() -> None:
    model = quantise_model(_tiny(), QuantConfig(weight_bits=4, act_bits=None, first_last_bits=None))
    bits = [(q.bits.weight, q.bits.act) for _, q in quant_layers(model)]
    assert bits == [(None, None), (4, None), (None, None)]
    assert quantise_model(_tiny(), QuantConfig()).__class__ is nn.Sequential
    assert not list(quant_layers(quantise_model(_tiny(), QuantConfig())))


def test_size_and_bit_operations_match_a_hand_count() -> None:
    # At 8 px: conv1 4*64 outputs x 27 MACs = 6912; conv2 8*64 x 36 = 18432; linear 8*10 = 80.
    # Parameters: conv1 108, conv2 288, linear 80 weights + 10 biases.
    float_cost = cost(_tiny(), 8)
    assert float_cost["model_mbit"] == pytest.approx(486 * 32 / 1e6)
    assert float_cost["gbops"] == pytest.approx((6912 + 18432 + 80) * 32 * 32 / 1e9)
    for method in ("minmax", "lsq"):
        config = QuantConfig(weight_bits=4, act_bits=2, method=method)
        quant_cost = cost(quantise_model(_tiny(), config), 8)
        # first and last at 8 bits, conv2 at 4-bit weights and 2-bit inputs, the bias at 32
        assert quant_cost["model_mbit"] == pytest.approx(
            (108 * 8 + 288 * 4 + 80 * 8 + 10 * 32) / 1e6
        )
        bops = 6912 * 8 * 8 + 18432 * 4 * 2 + 80 * 8 * 8
        assert quant_cost["gbops"] == pytest.approx(bops / 1e9)
        # LSQ's learned scales are no model parameters to count
        assert quant_cost["params_m"] == float_cost["params_m"] == pytest.approx(486 / 1e6)
        assert quant_cost["gflops"] == float_cost["gflops"]


def test_cost_on_the_meta_device_matches() -> None:
    config = QuantConfig(weight_bits=3, act_bits=3, method="lsq")
    real = cost(quantise_model(_tiny(), config), 8)
    with torch.device("meta"):
        meta = cost(quantise_model(_tiny(), config), 8)
    assert meta == pytest.approx(real)


@pytest.mark.parametrize("method", ["minmax", "lsq"])
def test_qat_recipe_learns_digits(make_recipe: RecipeFactory, method: str) -> None:
    recipe = make_recipe(
        data={"dataset": "digits", "image_size": 16, "fraction": 0.3, "batch_size": 32},
        augment={"random_resized_crop": False, "hflip": 0.0},
        optim={"name": "adamw", "lr": 0.005},
        quant={"weight_bits": 4, "act_bits": 4, "method": method},
        epochs=2,
    )
    final = fit(recipe)
    assert final["val_top1"] >= 30.0  # chance is 10%
    assert final["model_mbit"] < cost(_float_model(recipe), 16)["model_mbit"] / 4


def _float_model(recipe: object) -> nn.Module:
    from rsearch.train.model import build_model

    float_recipe = recipe.model_copy(update={"quant": QuantConfig()})  # type: ignore[attr-defined]
    return build_model(float_recipe, 10)


def test_checkpoint_round_trip_gives_the_same_eval_outputs(
    make_recipe: RecipeFactory, tmp_path: Path
) -> None:
    recipe = make_recipe(
        data={"dataset": "digits", "image_size": 16, "fraction": 0.2},
        quant={"weight_bits": 3, "act_bits": 3, "method": "lsq"},
        ema={"enabled": True, "decay": 0.9},
        channels_last=True,
    )
    ctx = setup_distributed("cpu")
    try:
        trained = build_session(recipe, ctx, "cpu")
        run_epoch(trained, 0)
        trained.history.append({})
        save_checkpoint(trained, tmp_path)
        fresh = build_session(recipe, ctx, "cpu")
        state = read_checkpoint(tmp_path, ctx)
        assert state is not None
        restore(fresh, state)
    finally:
        teardown_distributed(ctx)
    x = torch.randn(4, 3, 16, 16)
    for a, b in ((trained.model, fresh.model), (trained.step.ema.module, fresh.step.ema.module)):  # type: ignore[union-attr]
        a.eval(), b.eval()
        with torch.no_grad():
            assert torch.equal(a(x), b(x))
    calibrated = [q.input_fake_quant.calibrated for _, q in quant_layers(fresh.model)]  # type: ignore[union-attr]
    assert all(bool(c) for c in calibrated)  # a resumed LSQ run keeps its learned scales


def test_eval_runs_the_fake_quantised_model(make_recipe: RecipeFactory) -> None:
    recipe = make_recipe(
        data={"dataset": "digits", "image_size": 16, "fraction": 0.2},
        quant={"weight_bits": 2, "act_bits": 2},
    )
    ctx = setup_distributed("cpu")
    try:
        session = build_session(recipe, ctx, "cpu")
        run_epoch(session, 0)
    finally:
        teardown_distributed(ctx)
    plain = copy.deepcopy(session.model).apply(disable_fake_quant)
    observed = {
        name: q.input_fake_quant.activation_post_process.max_val.clone()  # type: ignore[union-attr]
        for name, q in quant_layers(session.model)
    }

    def sums(model: nn.Module) -> tuple[float, float]:
        out = evaluate(model, session.data.val, session.eval_transform, None, 10)
        return out.loss, out.top1

    assert sums(session.model) != sums(plain)
    for name, q in quant_layers(session.model):  # evaluation leaves the input ranges alone
        max_val = q.input_fake_quant.activation_post_process.max_val  # type: ignore[union-attr]
        assert torch.equal(max_val, observed[name])


@pytest.mark.parametrize("bits", [1, 9, 16])
def test_bit_widths_outside_two_to_eight_are_refused(bits: int) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="weight_bits"):
        QuantConfig(weight_bits=bits)
    assert not QuantConfig().enabled and QuantConfig(act_bits=4).enabled
