"""Regularized inversion (Mahendran & Vedaldi 2015, "Understanding deep image representations by
inverting them"): the content reconstruction of one layer, plus natural-image priors — an α-norm that
keeps pixels in a plausible range, total variation that prefers piecewise-smooth images, and jitter
(a random shift each step, as in their 2016 follow-up) so that the image must match at every alignment.

With every prior at zero this is the plain reconstruction (the paper's Figure 1), so the two can be
compared at equal steps: how much of a deep layer's "lost detail" a natural-image prior brings back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import ImageError
from ..image import to_bhwc, to_nchw
from ..options import RunOptions
from .progress import StepProgress

DEFAULT_LR = 0.05          # Adam on the pixels (0..1 units), when options.lr is None
DEFAULT_ALPHA = 6.0        # the exponent of the α-norm prior (M&V: 6)
DEFAULT_ALPHA_NORM = 0.01  # weights of the priors, each term normalized as in M&V (eq. 3-4); measured at
                           # 64 px from relu5_1: TV 5 gives a gray blob, 0.1 the face at the photo's detail level
DEFAULT_TV = 0.1
DEFAULT_JITTER = 2         # px: the largest random shift per step
PIXEL_RANGE = 80 / 255     # M&V's B: the typical deviation of a pixel from the mean (80 of 255)
TV_RANGE = PIXEL_RANGE / 6.5   # M&V's V = B / 6.5
PIXEL_MEAN = 0.5
START_NOISE = 0.1          # start from 0.5 ± 0.05 noise, as the engine's plain reconstruction


@dataclass
class Inversion:
    image: torch.Tensor            # [1,H,W,3]
    layer: str
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None


def priors(x: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """M&V's normalized α-norm, Σ|x - mean|^α / (HW B^α), and TV (β = 2), Σ|∇x|² / (HW V²)."""
    pixels = x.shape[-2] * x.shape[-1]
    norm = (x - PIXEL_MEAN).abs().div(PIXEL_RANGE).pow(alpha).sum() / pixels
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    tv = (dy.pow(2) + dx.pow(2)).sum() / (pixels * TV_RANGE ** 2)
    return norm, tv


def invert(vgg, image, layer: str, steps: int | None = None, *, options: RunOptions | None = None,
           alpha_norm: float = DEFAULT_ALPHA_NORM, alpha: float = DEFAULT_ALPHA, tv: float = DEFAULT_TV,
           jitter: int = DEFAULT_JITTER, lr: float | None = None, seed: int | None = None,
           callback: Callable | None = None) -> Inversion:
    """Reconstruct `image` from its features at `layer`, minimizing ||Φ(x) − Φ0||² / ||Φ0||² plus the
    weighted priors; alpha_norm=0, tv=0, jitter=0 is the plain reconstruction.

    The run's options come from `options` (a RunOptions: reconstruction_steps, seed, lr; None = the
    defaults) as for the engine's reconstructions; `steps`, `seed` and `lr` are a convenience that changes
    them. The priors and the jitter are the explorer's own."""
    changes = {name: value for name, value in (("reconstruction_steps", steps), ("seed", seed), ("lr", lr))
               if value is not None}
    options = RunOptions.of(options, **changes)
    steps, seed = options.reconstruction_steps, options.seed
    lr = DEFAULT_LR if options.lr is None else options.lr
    for name, value in (("alpha_norm", alpha_norm), ("tv", tv)):
        if not float(value) >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not float(alpha) >= 1:
        raise ValueError(f"alpha must be >= 1, got {alpha}")
    jitter = int(jitter)
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0 px, got {jitter}")
    vgg = vgg.grad_ready()
    (layer,) = vgg.check_layers([layer])
    target_image = to_nchw(image, vgg.device)
    if target_image.shape[0] != 1:
        raise ImageError(f"invert takes one image, got a batch of {target_image.shape[0]}")
    vgg.check_size(target_image.shape[2], target_image.shape[3], [layer])
    generator = torch.Generator().manual_seed(int(seed))
    history, stopped = [], None
    with torch.inference_mode(False):
        with torch.no_grad():
            target = vgg.features(target_image, [layer])[layer].float()
            scale = target.pow(2).sum().clamp_min(1e-12)
        noise = torch.rand(target_image.shape, generator=generator)
        x = (PIXEL_MEAN + START_NOISE * (noise - 0.5)).to(vgg.device).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=float(lr))
        with torch.enable_grad():
            for step in range(1, steps + 1):
                opt.zero_grad(set_to_none=True)
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
                seen = torch.roll(x, shifts=(dy, dx), dims=(2, 3)) if jitter else x
                feats = vgg.features(seen, [layer])[layer].float()
                fit = (feats - target).pow(2).sum() / scale
                norm, smooth = priors(x, float(alpha)) if (alpha_norm or tv) else (fit * 0, fit * 0)
                loss = fit + float(alpha_norm) * norm + float(tv) * smooth
                loss.backward()
                opt.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
                record = {"step": step, "total": float(loss.detach()), "content": float(fit.detach()),
                          "alpha_norm": float(norm.detach()), "tv": float(smooth.detach())}
                history.append(record)
                if callback is not None:
                    progress = StepProgress(step, steps, lambda r=record: r["total"], lambda: to_bhwc(x.detach()))
                    callback(progress)
                    if progress.stop_requested:
                        stopped = "callback"
                        break
    return Inversion(to_bhwc(x.detach()), layer, history, stopped)
