"""Image conversions. Public functions take PIL images or [B,H,W,C] tensors in 0..1 (ComfyUI's IMAGE);
the engine works on [B,3,H,W] tensors."""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .errors import ImageError

# A float image a little outside 0..1 is clamped (a bicubic upscale overshoots hard edges by a few
# percent); beyond this margin the values are not in 0..1 units (0..255 floats, -1..1 tensors) and are
# refused, since clamping them would give an all-white or all-black image.
RANGE_TOLERANCE = 0.25
# PIL's errors for damaged files are of many types (truncated data, broken chunks, bad headers).
_DAMAGED = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def load_image(path) -> torch.Tensor:
    """Read an image file into [1,H,W,3]: the one loader of the engine and its CLIs. EXIF orientation is
    applied, 16-bit files are scaled to 0..1; decompression bombs and damaged files raise ImageError."""
    name = os.fspath(path)
    try:
        with warnings.catch_warnings():
            # PIL warns from MAX_IMAGE_PIXELS (89 MP) and raises from twice that: both are refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(name) as img:
                return from_pil(img)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path}") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder, not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageError(f"refusing {path}: it has {pixels}, above the limit of {Image.MAX_IMAGE_PIXELS:,} "
                         f"(a decompression bomb, or an image too large to process; shrink it first)") from None
    except MemoryError:
        raise ImageError(f"not enough memory to read {path}; shrink the image first") from None
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
    except _DAMAGED as exc:
        raise ImageError(f"cannot read image {path}: {exc} (the file is damaged, truncated or not an "
                         f"image)") from None


def from_pil(img: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> [1,H,W,3] float32 in 0..1, upright (EXIF orientation applied; applying it
    twice is harmless, PIL drops the tag). Alpha is dropped, gray is repeated, 16-bit is scaled by 65535."""
    try:
        img = ImageOps.exif_transpose(img) or img
    except _DAMAGED:   # unreadable EXIF: the pixels are still fine
        pass
    if img.mode.startswith("I;16") or img.mode == "I":
        array = np.asarray(img).astype(np.float64)
        # "I" (32-bit) holds 16-bit PNG/TIFF samples unless its values say otherwise
        scale = 65535.0 if img.mode != "I" or array.max(initial=0) <= 65535 else 4294967295.0
        array = np.clip(array / scale, 0, 1).astype(np.float32)[..., None].repeat(3, axis=2)
    else:
        try:
            array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        except ValueError as exc:   # a mode PIL cannot convert (LAB, ...)
            raise ImageError(f"cannot convert a {img.mode} image to RGB ({exc})") from None
    return torch.from_numpy(array.copy()).unsqueeze(0)


def to_pil(image: torch.Tensor, index: int = 0) -> Image.Image:
    """One image of a [B,H,W,3] (or [B,3,H,W]) batch as an 8-bit PIL image."""
    image = as_bhwc(image)
    array = (image[index].clamp(0, 1).mul(255).round().to(torch.uint8)).cpu().numpy()
    return Image.fromarray(array, "RGB")


def as_bhwc(image) -> torch.Tensor:
    """Accept PIL, [H,W,C], [B,H,W,C] (C=1,3,4) or [B,3,H,W]; return float32 [B,H,W,3] in 0..1 on its device.

    uint8 (and uint16) tensors and arrays are scaled to 0..1; float values must already be in 0..1 (a
    margin of RANGE_TOLERANCE is clamped); 0..255 floats, negative or non-finite values raise ImageError.
    """
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint16:
            image = image.astype(np.float32) / 65535.0
        try:
            image = torch.from_numpy(np.ascontiguousarray(image))
        except TypeError:
            raise ImageError(f"unsupported array dtype {image.dtype}; give uint8 0..255 or floats in "
                             "0..1") from None
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
    return _unit_range(image)


def _unit_range(image: torch.Tensor) -> torch.Tensor:
    """float32 in 0..1 from uint8/uint16/bool/float pixels; other integers and out-of-range floats refused."""
    if image.dtype == torch.uint8:
        return image.float() / 255.0
    if image.dtype == getattr(torch, "uint16", None):
        return image.float() / 65535.0
    if image.dtype == torch.bool:
        return image.float()
    if not image.dtype.is_floating_point:
        raise ImageError(f"image tensor of dtype {image.dtype}: give uint8 values 0..255 or floats in 0..1")
    image = image.float()
    if not torch.isfinite(image).all():
        raise ImageError("image contains NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        hint = " (this looks like 0..255 values: divide by 255 or pass uint8)" if 1 < high <= 255 and low >= 0 \
            else ""
        raise ImageError(f"image values must lie in 0..1, got {low:.4g} .. {high:.4g}{hint}")
    if low < 0 or high > 1:
        image = image.clamp(0, 1)
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


def fit_max_side(height: int, width: int, max_side: int, upscale: bool = False) -> tuple[int, int]:
    """The (H,W) with the long side at most `max_side` (exactly `max_side` when `upscale`), aspect kept."""
    if max(height, width) == max_side or (max(height, width) < max_side and not upscale):
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_image(image, max_side: int | None, upscale: bool = False) -> torch.Tensor:
    """[B,h,w,3] float32 with the long side at most `max_side` (enlarged to it when `upscale`); None or 0 =
    unchanged. The one 'fit to a max size' helper of the engine and the nodes."""
    image = as_bhwc(image)
    if not max_side or int(max_side) <= 0:
        return image.contiguous()
    size = fit_max_side(image.shape[1], image.shape[2], int(max_side), upscale)
    if size == tuple(image.shape[1:3]):
        return image.contiguous()
    with torch.inference_mode(False):
        x = image.permute(0, 3, 1, 2).clone().contiguous()
        return resize(x, size).permute(0, 2, 3, 1).contiguous()
