"""Image conversions. Public functions take PIL images or [B,H,W,C] tensors in 0..1 (ComfyUI's IMAGE);
the engine works on [B,3,H,W] tensors."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import ImageError


def load_image(path) -> torch.Tensor:
    """Read an image file into [1,H,W,3]."""
    try:
        with Image.open(os.fspath(path)) as img:
            return from_pil(img)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path}") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from exc


def from_pil(img: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> [1,H,W,3] float32 in 0..1; alpha is dropped, gray is repeated."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.float32) / (65535.0 if img.mode.startswith("I;16") else 1.0)
        array = np.clip(array, 0, 1)[..., None].repeat(3, axis=2)
    else:
        array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).unsqueeze(0)


def to_pil(image: torch.Tensor, index: int = 0) -> Image.Image:
    """One image of a [B,H,W,3] (or [B,3,H,W]) batch as an 8-bit PIL image."""
    image = as_bhwc(image)
    array = (image[index].clamp(0, 1).mul(255).round().to(torch.uint8)).cpu().numpy()
    return Image.fromarray(array, "RGB")


def as_bhwc(image) -> torch.Tensor:
    """Accept PIL, [H,W,C], [B,H,W,C] (C=1,3,4) or [B,3,H,W]; return float32 [B,H,W,3] on its device."""
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if not isinstance(image, torch.Tensor):
        raise ImageError(f"expected a PIL image or a tensor, got {type(image).__name__}")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise ImageError(f"expected an image tensor [B,H,W,C], got shape {tuple(image.shape)}")
    if image.shape[-1] not in (1, 3, 4) and image.shape[1] in (1, 3, 4):
        image = image.permute(0, 2, 3, 1)
    channels = image.shape[-1]
    if channels == 1:
        image = image.expand(-1, -1, -1, 3)
    elif channels == 4:
        image = image[..., :3]
    elif channels != 3:
        raise ImageError(f"expected 1, 3 or 4 channels, got shape {tuple(image.shape)}")
    if image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        raise ImageError(f"empty image, shape {tuple(image.shape)}")
    image = image.float()
    if not torch.isfinite(image).all():
        raise ImageError("image contains NaN or infinite values")
    return image


def to_nchw(image, device=None) -> torch.Tensor:
    """PIL / [B,H,W,C] -> contiguous float32 [B,3,H,W] on `device` (a normal, non-inference tensor)."""
    tensor = as_bhwc(image)
    with torch.inference_mode(False):
        return tensor.permute(0, 3, 1, 2).to(device=device, dtype=torch.float32).clone().contiguous()


def to_bhwc(x: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] -> [B,H,W,3] float32 on the CPU, clamped to 0..1."""
    return x.detach().clamp(0, 1).permute(0, 2, 3, 1).float().cpu().contiguous()


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize [B,3,H,W] to (H,W) with antialiasing (area-correct when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def fit_max_side(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The (H,W) with the long side at most `max_side`, aspect kept."""
    if max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def scaled_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))
