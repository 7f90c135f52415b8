"""Texture measures for the Figure 1 style ladder: how grainy a texture is and how large its structures are.

    high_frequency_share(image)     share of the luminance's power above half the Nyquist frequency
    autocorrelation_radius(image)   px at which the luminance's radially averaged autocorrelation falls to 1/e
    grid_peak(image, period)        how strongly a grid of `period` px stands out of the power spectrum

Each works per image of a batch ([B,H,W,3] or [B,3,H,W]). Compare a texture with its painting at the SAME
size (`at_size`): a painting's grain share depends on the resolution it is measured at.
"""

from __future__ import annotations

import math

import torch

from .explore.metrics import HIGH_FREQUENCY, high_frequency_share
from .image import resize, to_nchw

# The autocorrelation radius is where the correlation falls below 1/e: white noise ~0.5 px, the bundled
# paintings at 128 px 1.5-4 px; the radius grows with the size of the texture's blobs and strokes.
AUTOCORRELATION_LEVEL = 1 / math.e


def _nchw(image) -> torch.Tensor:
    if isinstance(image, torch.Tensor) and image.ndim == 4 and image.shape[1] == 3:
        return image.detach().float()
    return to_nchw(image)


def at_size(image, size) -> torch.Tensor:
    """`image` ([B,H,W,3] or [B,3,H,W]) resized to (H, W) as [B,3,H,W]: the painting at the texture's scale."""
    return resize(_nchw(image), tuple(size))


def radial_autocorrelation(image) -> torch.Tensor:
    """[B, R]: the luminance's autocorrelation (mean removed, 1 at lag 0) averaged over rings of integer
    radius 0..R-1, R = half the short side. Zero-padded (no wrap-around) and divided by the overlap."""
    gray = _nchw(image).mean(dim=1)
    gray = gray - gray.mean(dim=(-2, -1), keepdim=True)
    h, w = gray.shape[-2:]
    spectrum = torch.fft.rfft2(gray, s=(2 * h, 2 * w))
    corr = torch.fft.irfft2(spectrum.abs().pow(2), s=(2 * h, 2 * w))
    ones = torch.fft.rfft2(torch.ones(h, w), s=(2 * h, 2 * w))
    overlap = torch.fft.irfft2(ones.abs().pow(2), s=(2 * h, 2 * w)).clamp_min(1.0)
    corr = corr / overlap
    corr = corr / corr[..., :1, :1].clamp_min(1e-20)
    dy = torch.fft.fftfreq(2 * h, 1 / (2 * h)).view(-1, 1)
    dx = torch.fft.fftfreq(2 * w, 1 / (2 * w)).view(1, -1)
    ring = (dy.pow(2) + dx.pow(2)).sqrt().round().long()
    count = min(h, w) // 2
    inside = ring < count
    index = ring[inside]
    values = corr[..., inside]
    sums = torch.zeros(*values.shape[:-1], count).index_add_(-1, index, values)
    counts = torch.zeros(count).index_add_(0, index, torch.ones_like(index, dtype=torch.float))
    return sums / counts


def autocorrelation_radius(image, level: float = AUTOCORRELATION_LEVEL) -> torch.Tensor:
    """Per image: the radius in px (linearly interpolated) where the radially averaged autocorrelation of
    the luminance first falls below `level`; half the short side if it never does."""
    profile = radial_autocorrelation(image)
    radii = []
    for row in profile:
        below = (row < level).nonzero()
        if len(below) == 0:
            radii.append(float(len(row)))
            continue
        r = int(below[0])
        a, b = float(row[r - 1]), float(row[r])
        radii.append(r - 1 + (a - level) / (a - b))
    return torch.tensor(radii)


def grid_peak(image, period: int = 4, crop: int = 768) -> torch.Tensor:
    """Per image: the power of the luminance at the diagonal frequency (1/period, 1/period) cycles/px (the
    largest of the 3x3 bins around it), over the median power of the 17x17 bins around that frequency, in
    a centred square crop of up to `crop` px under a Hann window. A grid of dots `period` px apart (the
    one max pooling's gradient leaves on large images, settings.HIGH_RES_POOLINGS) stands out: 37 on a
    1024 px stylization with max pooling; 2-7 where there is none."""
    gray = _nchw(image).double().mean(dim=1)
    h, w = gray.shape[-2:]
    c = min(crop, h, w) // 2 * 2
    top, left = (h - c) // 2, (w - c) // 2
    gray = gray[..., top:top + c, left:left + c]
    gray = gray - gray.mean(dim=(-2, -1), keepdim=True)
    window = torch.hann_window(c, periodic=False, dtype=torch.float64)
    power = torch.fft.fft2(gray * window.view(-1, 1) * window.view(1, -1)).abs().pow(2)
    k = c // period

    def bins(reach: int) -> torch.Tensor:
        index = torch.tensor([(k + d) % c for d in range(-reach, reach + 1)])
        return power[..., index][..., index, :].flatten(-2)

    return (bins(1).amax(dim=-1) / bins(8).median(dim=-1).values).float()


__all__ = ["AUTOCORRELATION_LEVEL", "HIGH_FREQUENCY", "at_size", "autocorrelation_radius", "grid_peak",
           "high_frequency_share", "radial_autocorrelation"]
