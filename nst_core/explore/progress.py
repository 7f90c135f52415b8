"""The explorer's progress object, in the style of the engine's callbacks: step/total, lazy image, stop()."""

from __future__ import annotations

from typing import Callable

import torch


class StepProgress:
    """Handed to `callback` after every step. `image` ([B,H,W,3]) and `loss` are computed only when read."""

    def __init__(self, step: int, total: int, loss_fn: Callable[[], float],
                 image_fn: Callable[[], torch.Tensor]):
        self.step, self.total = step, total
        self._loss_fn, self._image_fn = loss_fn, image_fn
        self.stop_requested = False

    @property
    def loss(self) -> float:
        return self._loss_fn()

    @property
    def losses(self) -> dict:
        return {"total": self.loss}

    @property
    def image(self) -> torch.Tensor:
        return self._image_fn()

    def stop(self) -> None:
        """End the run after this step; the current image is returned."""
        self.stop_requested = True


def check_steps(steps) -> int:
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return steps
