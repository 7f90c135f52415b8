"""Seeded noise with a painting's power spectrum: the start of texture synthesis (Figure 1, style ladder).

White noise has ~80 % of its power above half the Nyquist frequency, a painting 3-10 %; what the Gram
statistics do not push back stays in the texture as grain. Noise whose power spectrum is the painting's
(radially averaged, so isotropic: no trace of the painting's layout or its borders) with random phases
starts at the painting's grain instead; the optimization then only has to arrange the structures. With
`max_period` the painting's long-range structure is left out of the start (its power spread evenly over
those low frequencies), so that the deeper rungs of the texture ladder, not the start, bring the large
structures.
"""

from __future__ import annotations

import torch

from .image import resize, to_nchw


def radial_power(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(power [C, R] averaged over rings of integer radius (in units of 1 / short side), ring index of each
    rfft2 bin [H, W//2+1]) of a [1,C,H,W] image with its per-channel mean removed."""
    h, w = image.shape[-2:]
    power = torch.fft.rfft2(image[0] - image[0].mean(dim=(-2, -1), keepdim=True)).abs().pow(2)
    fy = torch.fft.fftfreq(h).view(-1, 1)
    fx = torch.fft.rfftfreq(w).view(1, -1)
    rings = ((fy.pow(2) + fx.pow(2)).sqrt() * min(h, w)).round().long()
    count = int(rings.max()) + 1
    sums = torch.zeros(power.shape[0], count).index_add_(1, rings.flatten(), power.flatten(1))
    return sums / ring_sizes(rings, count).clamp_min(1), rings


def ring_sizes(rings: torch.Tensor, count: int) -> torch.Tensor:
    """[count]: how many rfft2 bins each ring of `rings` (radial_power's) holds."""
    return torch.zeros(count).index_add_(0, rings.flatten(), torch.ones(rings.numel()))


def spread_long_range(power: torch.Tensor, rings: torch.Tensor, max_period: float,
                      short_side: int) -> torch.Tensor:
    """`power` [C, R] (radial_power) with the power at periods longer than `max_period` px spread evenly
    over those frequency bins: the same total power there (so the same variance and the same share above
    half the Nyquist frequency), but no long-range correlation left."""
    cut = int(round(short_side / float(max_period)))
    if cut <= 1:
        return power
    bins = ring_sizes(rings, power.shape[1])
    spread = power.clone()
    low = (power[:, 1:cut] * bins[1:cut]).sum(1, keepdim=True)
    spread[:, 1:cut] = low / bins[1:cut].sum()
    return spread


def spectrum_noise(image, size, seed: int = 0, device=None, max_period: float | None = None) -> torch.Tensor:
    """[1,3,H,W] in 0..1: the radially averaged amplitude per channel of `image` ([1,H,W,3] or [1,3,H,W])
    resized to `size` (H, W), random phases (seeded) and the painting's channel means. One phase per
    frequency, shared by the channels, keeps them correlated as a painting's are (independent ones start
    from rainbow clouds and end grainier). `max_period` (px): see `spread_long_range`."""
    painting = resize(to_nchw(image)[:1], tuple(size))
    power, rings = radial_power(painting)
    if max_period is not None:
        power = spread_long_range(power, rings, max_period, min(size))
    amplitude = power.sqrt()[:, rings]
    generator = torch.Generator().manual_seed(int(seed))
    white = torch.rand((1, *size), generator=generator)
    phase = torch.fft.rfft2(white - white.mean(dim=(-2, -1), keepdim=True))
    phase = phase / phase.abs().clamp_min(1e-12)
    noise = torch.fft.irfft2(amplitude * phase, s=tuple(size))
    mean = painting[0].mean(dim=(-2, -1), keepdim=True)
    return (noise + mean).clamp(0, 1)[None].to(device)
