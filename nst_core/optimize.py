"""Pixel optimization: the objective, the optimizers and the step loop with callbacks.

Only the image is optimized; the network's weights never require grad and the targets are fixed.
The loop reads losses back from the device only when a callback, the NaN guard or the end needs them.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from .errors import ImageError
from .image import resize, to_bhwc, to_nchw
from .losses import content_loss, style_layer_loss, tv_loss
from .memory import check_fits

OPTIMIZERS = ("lbfgs", "adam", "sgd")
INITS = ("content", "noise", "style", "image")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02, "sgd": 0.01}
TERMS = ("total", "content", "style", "tv")


@dataclass
class Result:
    """What a run gives back: the image(s) [B,H,W,3], the per-step losses and why it stopped early."""
    image: torch.Tensor
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def losses(self) -> dict:
        """The last recorded losses."""
        return self.history[-1] if self.history else {}


class Progress:
    """Handed to the callback after every step. `image` and `losses` are computed only when read."""

    def __init__(self, step, total, stage, stages, overall_step, overall_total, losses_fn, image_fn):
        self.step, self.total = step, total
        self.stage, self.stages = stage, stages
        self.overall_step, self.overall_total = overall_step, overall_total
        self._losses_fn, self._image_fn = losses_fn, image_fn
        self._losses = None
        self.stop_requested = False

    @property
    def losses(self) -> dict:
        if self._losses is None:
            self._losses = self._losses_fn()
        return self._losses

    @property
    def image(self) -> torch.Tensor:
        return self._image_fn()

    def stop(self) -> None:
        """End the run after this step; the current image is returned."""
        self.stop_requested = True


def autocast_dtype(device) -> torch.dtype | None:
    """The reduced precision the convs run in: bfloat16 on CUDA GPUs that have it (float32 range, so no
    loss scaling), else None (float32; also on CPU, where bfloat16 convs are slower without AMX).
    NST_CUDA_AUTOCAST=0 turns it off. (Not measured here: the project's benchmark machine has no GPU.)"""
    device = torch.device(device)
    if device.type != "cuda" or os.environ.get("NST_CUDA_AUTOCAST", "1") == "0":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else None


class Objective:
    """total = α·content + β·style + tv_weight·TV at one output size, from a single forward pass."""

    def __init__(self, vgg, content=None, style=None, tv_weight: float = 0.0, size=None):
        if content is None and style is None and tv_weight == 0:
            raise ValueError("nothing to optimize: give a content target, a style target or a TV weight")
        self.vgg = vgg.grad_ready()
        self.content, self.style, self.tv_weight = content, style, float(tv_weight)
        self.size = tuple(size)
        weights = [t.weight for t in (content, style) if t is not None] + [self.tv_weight]
        if all(w == 0 for w in weights):
            raise ValueError("every weight is zero (content, style and TV): nothing to optimize")
        layers = []
        for target in (content, style):
            if target is not None:
                layers += [name for name in target.layers if name not in layers]
        self.layers = layers
        if layers:
            self.vgg.check_size(*self.size, layers)
            check_fits(self.vgg, self.size, layers)
        self.autocast = autocast_dtype(self.vgg.device)
        # the targets for this size, computed once, outside the step loop
        self.terms = self._layer_terms()

    def _layer_terms(self) -> dict[str, list]:
        """{layer: [(kind, weight, target tensor)]}: what each layer's output is compared with."""
        terms: dict[str, list] = {}
        if self.content is not None:
            feats = self.content.features_at(self.size)
            for name, w in zip(self.content.layers, self.content.layer_weights):
                terms.setdefault(name, []).append(("content", w, feats[name]))
        if self.style is not None:
            grams = self.style.grams_at(self.size)
            for name, w in zip(self.style.layers, self.style.layer_weights):
                terms.setdefault(name, []).append(("style", w, grams[name]))
        return terms

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        zero = x.new_zeros(())
        terms = self.terms
        parts = {"content": [], "style": []}

        def on_feature(name, h):
            # each layer's loss right after the layer (in float32 even under autocast), so that its
            # backward runs when the backward pass reaches that layer: peak memory as a plain loop's
            with torch.autocast(x.device.type, enabled=False):
                for kind, w, target in terms.get(name, ()):
                    loss = content_loss(h, target) if kind == "content" else style_layer_loss(h, target)
                    parts[kind].append(w * loss)

        if self.layers:
            # convs in reduced precision on CUDA (autocast); the Grams and the losses stay in float32
            with torch.autocast(x.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                self.vgg.features(x, self.layers, on_feature)
        content = sum(parts["content"]) if parts["content"] else zero
        style = sum(parts["style"]) if parts["style"] else zero
        tv = tv_loss(x) if self.tv_weight else zero
        total = zero
        if self.content is not None and self.content.weight:
            total = total + self.content.weight * content
        if self.style is not None and self.style.weight:
            total = total + self.style.weight * style
        if self.tv_weight:
            total = total + self.tv_weight * tv
        return total, {"total": total, "content": content, "style": style, "tv": tv}


def make_optimizer(name: str, params, lr: float | None):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else float(lr)
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"learning rate must be positive, got {lr}")
    if name == "lbfgs":
        # one iteration per step so callbacks see every step; the history persists across steps
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=100,
                                 tolerance_grad=-1, tolerance_change=-1)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def initial_image(init: str, size, *, content=None, style=None, init_image=None, seed: int = 0,
                  device=None, noise_scale: float = 1.0) -> torch.Tensor:
    """The starting pixels [1,3,H,W]: seeded white noise, the content, the (first) style or an image.

    Noise is uniform around mid-gray, 0.5 ± noise_scale/2 (1.0 = the full 0..1 range).
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    if init == "noise":
        generator = torch.Generator().manual_seed(int(seed))
        noise = torch.rand((1, 3, *size), generator=generator)
        return (0.5 + float(noise_scale) * (noise - 0.5)).to(device)
    if init == "content":
        if content is None:
            raise ValueError("init 'content' needs a content target")
        return content.image_at(size).to(device)
    if init == "style":
        if style is None:
            raise ValueError("init 'style' needs a style target")
        return resize(style.images[0], tuple(size)).to(device)
    if init_image is None:
        raise ValueError("init 'image' needs an init image")
    image = to_nchw(init_image)
    if image.shape[0] != 1:
        raise ImageError(f"the init image must be a single image, got a batch of {image.shape[0]}")
    return resize(image, tuple(size)).to(device)


def run(objective: Objective, x0: torch.Tensor, *, optimizer: str = "lbfgs", steps: int = 300,
        lr: float | None = None, callback: Callable | None = None, stage: int = 0, stages: int = 1,
        offset: int = 0, overall_total: int | None = None,
        present: Callable[[torch.Tensor], torch.Tensor] | None = None,
        check_every: int | None = None) -> tuple[torch.Tensor, list[dict], str | None, list[str]]:
    """Optimize the pixels from `x0` for `steps` steps. Returns (x, history, stopped, warnings).

    A non-finite loss ends the run with the last image whose loss was finite, and a warning.
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    with torch.inference_mode(False), torch.enable_grad():
        x = x0.detach().clone().requires_grad_(True)
        opt = make_optimizer(optimizer, [x], lr)
        check_every = check_every or (1 if x.device.type == "cpu" else 10)
        records: list[torch.Tensor] = []
        last_good = x.detach().clone()
        stopped, notes = None, []
        present = present or (lambda t: t)

        def closure():
            opt.zero_grad(set_to_none=True)
            total, parts = objective(x)
            total.backward()
            closure.parts = parts
            return total

        grad_scale = None
        for step in range(1, steps + 1):
            before = x.detach().clone()
            if optimizer == "lbfgs":
                opt.step(closure)
            else:
                closure()
                if optimizer == "sgd":
                    # plain SGD on the loss divided by its first gradient's mean magnitude, so that the
                    # learning rate is a step in pixel units whatever the weights and the image size
                    if grad_scale is None:
                        grad_scale = x.grad.abs().mean().clamp_min(1e-20)
                    x.grad.div_(grad_scale)
                opt.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
            parts = closure.parts
            records.append(torch.stack([parts[t].detach().float() for t in TERMS]))
            if step % check_every == 0 or step == steps or callback is not None:
                if not bool(torch.isfinite(records[-1][0])):
                    with torch.no_grad():
                        x.copy_(last_good)
                    records.pop()
                    stopped = "non-finite loss"
                    message = (f"the loss became non-finite at step {step} ({optimizer}, lr="
                               f"{DEFAULT_LR[optimizer] if lr is None else lr}); returning the last finite "
                               f"image. Lower the learning rate or the weights.")
                    notes.append(message)
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                    break
                last_good = before
            if callback is not None:
                record = records[-1]
                progress = Progress(step, steps, stage, stages, offset + step, overall_total or steps,
                                    lambda r=record: dict(zip(TERMS, r.tolist())),
                                    lambda: to_bhwc(present(x.detach())))
                callback(progress)
                if progress.stop_requested:
                    stopped = "callback"
                    break
        result = x.detach()
        if not bool(torch.isfinite(result).all()):
            result = last_good
            if stopped is None:
                stopped = "non-finite loss"
                notes.append("the image became non-finite; returning the last finite image")
        if optimizer == "lbfgs":
            result = result.clamp(0, 1)
    history = []
    if records:
        for i, values in enumerate(torch.stack(records).tolist(), start=1):
            history.append({"step": offset + i, "stage": stage, **dict(zip(TERMS, values))})
    return result, history, stopped, notes
