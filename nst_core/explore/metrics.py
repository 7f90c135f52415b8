"""Image measures the explorer reports and its tests check: how much of an image is fine detail."""

from __future__ import annotations

import torch

from ..image import to_nchw

HIGH_FREQUENCY = 0.25     # cycles per pixel: periods under 4 px. White noise has ~80% of its power there,
                          # the bundled photos 5-15% (chelsea at 48-64 px: 10-14%)


def high_frequency_share(image, cutoff: float = HIGH_FREQUENCY) -> torch.Tensor:
    """Per image of a batch ([B,H,W,3] or [B,3,H,W]): the share of the luminance's power spectrum (mean
    removed) above `cutoff` cycles per pixel."""
    x = to_nchw(image) if not (isinstance(image, torch.Tensor) and image.ndim == 4 and image.shape[1] == 3) \
        else image.detach().float()
    gray = x.mean(dim=1)
    gray = gray - gray.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.rfft2(gray).abs().pow(2)
    fy = torch.fft.fftfreq(gray.shape[-2]).view(-1, 1)
    fx = torch.fft.rfftfreq(gray.shape[-1]).view(1, -1)
    high = (fy.pow(2) + fx.pow(2)).sqrt() > cutoff
    return (power * high.to(power.device)).sum(dim=(-2, -1)) / power.sum(dim=(-2, -1)).clamp_min(1e-20)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two images in 0..1."""
    mse = (a.float() - b.float()).pow(2).mean().clamp_min(1e-12)
    return float(10 * torch.log10(1.0 / mse))
