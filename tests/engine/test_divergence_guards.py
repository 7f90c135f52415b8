"""The loop's divergence guards (nst_core.loop), one at a time: a first-order loss far above its best, a
first-order image pinned at 0 or 1 (its loss risen less than the factor), and L-BFGS's patience with a
spike. Each test is built so that only its own guard can stop the run; the run stops "diverged" with the
best image and a warning, and a sane run is never stopped."""

from __future__ import annotations

import warnings

import pytest
import torch

import nst_core
from nst_core.loop import DIVERGENCE_FACTOR, LBFGS_PATIENCE
from nst_core.objective import PixelTerm
from nst_core.targets import ContentTarget, StyleTarget


class LossJump(PixelTerm):
    """Adds a constant far above any real loss on the chosen evaluations (counted from 1): the loss jumps
    while the pixels move as without it (a constant has no gradient) and nothing saturates."""

    name = "jump"

    def __init__(self, evaluations):
        self.evaluations, self.count = set(evaluations), 0

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return x.sum() * 0 + (1e12 if self.count in self.evaluations else 0.0)


def _optimize(vgg, cat64, starry64, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = nst_core.optimize(vgg, ContentTarget(vgg, cat64), StyleTarget(vgg, starry64), **options)
    return result, [str(w.message) for w in caught]


def _saturated(image: torch.Tensor) -> float:
    return float(((image <= 0) | (image >= 1)).float().mean())


def test_a_first_order_loss_far_above_its_best_stops_the_run(vgg, cat64, starry64):
    """The loss guard: at step 4 the loss is far above DIVERGENCE_FACTOR x the best while the image is
    sane, so only this guard can see it. Adam stops there, before recording the step."""
    result, caught = _optimize(vgg, cat64, starry64, steps=8, optimizer="adam", pixel_terms=[LossJump({4})])
    assert result.stopped == "diverged" and len(result.history) == 3
    assert any("diverged at step 4" in message for message in caught)
    assert "lower the learning rate" in result.warnings[-1].lower()
    assert _saturated(result.image) < 0.05


def test_a_saturated_first_order_run_stops_though_its_loss_rose_less_than_the_factor(vgg, cat64):
    """The saturation guard: SGD with a huge step from noise pins almost every pixel at 0 or 1 at once
    while the (content only) loss rises about 4x, under DIVERGENCE_FACTOR (measured: 2.1 -> 9.3, 99 %
    pinned): the run stops at step 2 and returns the best image, not the saturated one."""
    assert DIVERGENCE_FACTOR > 5
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = nst_core.optimize(vgg, ContentTarget(vgg, cat64), None, steps=10, optimizer="sgd", lr=50.0,
                                   init="noise")
    assert result.stopped == "diverged" and len(result.history) == 1
    assert "lower the learning rate" in result.warnings[-1].lower()
    assert _saturated(result.image) < 0.2


def test_lbfgs_rides_out_a_spike_shorter_than_its_patience(vgg, cat64, starry64):
    """L-BFGS without a line search spikes for a few steps and recovers: LBFGS_PATIENCE - 1 steps in a row
    far above the best do not stop it; LBFGS_PATIENCE steps do, at the last of them."""
    steps = LBFGS_PATIENCE + 4
    spike, _ = _optimize(vgg, cat64, starry64, steps=steps, optimizer="lbfgs",
                         pixel_terms=[LossJump(range(3, 3 + LBFGS_PATIENCE - 1))])
    assert spike.stopped is None and len(spike.history) == steps
    assert max(h["total"] for h in spike.history) > DIVERGENCE_FACTOR * spike.history[0]["total"]
    stuck, caught = _optimize(vgg, cat64, starry64, steps=steps, optimizer="lbfgs",
                              pixel_terms=[LossJump(range(3, 3 + LBFGS_PATIENCE))])
    assert stuck.stopped == "diverged" and len(stuck.history) == 2 + LBFGS_PATIENCE - 1
    assert any(f"diverged at step {2 + LBFGS_PATIENCE}" in message for message in caught)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_a_sane_run_is_never_stopped(vgg, cat64, starry64, optimizer):
    result, caught = _optimize(vgg, cat64, starry64, steps=10, optimizer=optimizer)
    assert result.stopped is None and not result.warnings and not caught
