"""No more fine grain than the painting has: a pixel term on the result's high frequencies.

Small runs grow rainbow grain: the deep style layers' statistics of a 128 px image can be matched by
pixel-scale patterns, mostly in colour, that the painting seen at that size does not have. The term
compares, per channel of YCbCr and per band of high frequencies, the amplitude (the root of the power per
pixel, `high_frequency_power`) with the painting's at the size its statistics are taken at, and penalizes
only the excess: Σ_{band,c} max(0, √(P(x)/P(painting)) − 1)². It is zero while the result is no grainier than
the painting, so it leaves a result that already is alone. The amplitude is a norm of a linear map of the
image, so the term is convex: a logarithm of the power instead bent L-BFGS's steps into divergence on a
photo far grainier than its painting.
"""

from __future__ import annotations

import torch

from .image import resize
from .objective import PixelTerm

# the term's weight: twice the painting's amplitude in one band and channel costs as much as the unchanged
# photo's whole style term at the default strength
GRAIN_WEIGHT = 5.0
# the band compared (cycles per pixel): beyond half the Nyquist frequency, where the grain lives
GRAIN_BANDS = (0.25, 0.5)
# a channel whose painting power is below this share of its luminance power (a gray painting) is compared
# with that share instead: the ratio stays finite and a gray painting still allows some colour
MIN_CHANNEL_SHARE = 0.005

# the least power per pixel a band is compared with (an 8-bit image's rounding alone holds ~1e-6)
MIN_POWER = 1e-6

_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                       [-0.168736, -0.331264, 0.5],
                       [0.5, -0.418688, -0.081312]])


def high_frequency_power(x: torch.Tensor, bands=GRAIN_BANDS) -> torch.Tensor:
    """[bands-1, 3]: per frequency band (cycles per pixel on the higher axis, edges `bands`; the default:
    beyond half the Nyquist frequency) and YCbCr channel of x [1,3,H,W] (RGB 0..1), the spectrum's power
    per pixel. Differentiable."""
    ycc = torch.einsum("ij,bjhw->bihw", _YCBCR.to(x), x.float())[0]
    ycc = ycc - ycc.mean(dim=(1, 2), keepdim=True)
    h, w = ycc.shape[-2:]
    power = torch.fft.rfft2(ycc).abs().pow(2) / (h * w)
    fy = torch.fft.fftfreq(h, device=x.device).abs()[:, None]
    fx = torch.fft.rfftfreq(w, device=x.device)[None, :]
    frequency = torch.maximum(fy, fx)
    # rfft2 holds half the spectrum: the other half mirrors it (columns 0 and w/2 appear once)
    twice = torch.full_like(fx, 2.0)
    twice[:, 0] = 1.0
    if w % 2 == 0:
        twice[:, -1] = 1.0
    rows = []
    for low, high in zip(bands[:-1], bands[1:]):
        band = ((frequency > low) & (frequency <= high)).to(power) * twice
        rows.append((power * band).sum(dim=(1, 2)) / (h * w))
    return torch.stack(rows)


class GrainTerm(PixelTerm):
    """GRAIN_WEIGHT · Σ max(0, √(P(x) / P(painting)) − 1)² over bands and channels, the paintings of `styles`
    (StyleTargets) at the size their statistics are taken at for x's size, their powers averaged by style
    weight and blend."""

    name = "grain"

    def __init__(self, styles, weight: float = GRAIN_WEIGHT):
        self.styles = [style for style in styles if style.weight > 0]
        self.weight = float(weight)
        self._reference: dict[tuple, torch.Tensor] = {}

    def reference(self, size: tuple[int, int], device) -> torch.Tensor:
        """The paintings' power per channel for an output of `size`, floored (MIN_CHANNEL_SHARE)."""
        key = (*size, str(device))
        if key not in self._reference:
            total = sum(style.weight for style in self.styles)
            power = torch.zeros(len(GRAIN_BANDS) - 1, 3, device=device)
            for style in self.styles:
                for image, share in zip(style.images, style.blend):
                    seen = resize(image, style.style_size(image, size)).to(device)
                    power = power + style.weight / total * share * high_frequency_power(seen)
            floor = torch.clamp(MIN_CHANNEL_SHARE * power[:, :1], min=MIN_POWER)
            self._reference[key] = torch.maximum(power, floor).detach()
        return self._reference[key]

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        power = high_frequency_power(x)
        reference = self.reference(tuple(x.shape[-2:]), x.device)
        # clamped before the root: √ of a flat image's zero power has an infinite slope (0 · ∞ = NaN)
        return ((torch.maximum(power, reference) / reference).sqrt() - 1).pow(2).sum()
