"""Colour preservation (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").

luminance: transfer on the luminance channel only, then put back the content's chrominance (YIQ).
histogram: recolour the style image to the content's colour mean and covariance before transfer.
"""

from __future__ import annotations

import torch

from .settings import COLOR_MODES as MODES, OptionError

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(x), x)


def luminance_rgb(x: torch.Tensor) -> torch.Tensor:
    """The luminance as a 3-channel gray image (what the network sees in luminance mode)."""
    return rgb_to_yiq(x)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style luminance shifted and scaled to the content's luminance mean and deviation, as gray RGB."""
    ys, yc = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    matched = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
    return matched.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def combine_luminance(luma_rgb: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The output's luminance with the content's chrominance (content resized to the output first)."""
    if content.shape[-2:] != luma_rgb.shape[-2:]:
        content = torch.nn.functional.interpolate(content, size=luma_rgb.shape[-2:], mode="bilinear",
                                                  align_corners=False, antialias=True)
    yiq = torch.cat([rgb_to_yiq(luma_rgb)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _sym_power(cov: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov + eps * torch.eye(3, dtype=cov.dtype))
    return vectors @ torch.diag(values.clamp_min(eps) ** power) @ vectors.T


def match_color_histogram(style: torch.Tensor, content: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Affine recolouring of `style` [1,3,H,W] so its colour mean and covariance equal the content's."""
    def stats(x):
        flat = x.reshape(3, -1).double()
        mean = flat.mean(dim=1, keepdim=True)
        centred = flat - mean
        return mean, centred, centred @ centred.T / centred.shape[1]
    mean_s, centred_s, cov_s = stats(style)
    mean_c, _, cov_c = stats(content)
    transform = _sym_power(cov_c, 0.5, eps) @ _sym_power(cov_s, -0.5, eps)
    out = transform @ centred_s + mean_c
    return out.reshape(style.shape).to(style.dtype).clamp(0, 1)


def prepare(mode: str, content, style):
    """Targets and output mapping for a colour-preservation mode: (content, style, to_output, notes).

    `style` is one StyleTarget or a list (one per region). `to_output` maps the optimized pixels to the
    image shown and returned (None = as they are).
    """
    if mode not in MODES:
        raise OptionError("preserve_color", f"unknown colour preservation {mode!r}; use one of {MODES}")
    if mode != "none" and (content is None or style is None):
        return content, style, None, ["colour preservation needs a content and a style target; ignored"]
    def each(transform):
        if isinstance(style, (list, tuple)):
            return [target.with_images(transform) for target in style]
        return style.with_images(transform)

    if mode == "histogram":
        source = content.image
        return content, each(lambda img: match_color_histogram(img, source)), None, []
    if mode == "luminance":
        source = content.image
        style = each(lambda img: match_luminance(img, source))
        content = content.with_image(luminance_rgb(source))
        return content, style, lambda x: combine_luminance(x, source.to(x.device)), []
    return content, style, None, []
