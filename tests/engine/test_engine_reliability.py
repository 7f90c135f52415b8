"""Hostile input to the engine (issue 10): images (EXIF, bombs, damaged files, 16-bit, tensor ranges) and
weights with NaN/inf are converted correctly or refused with an ImageError/WeightsError naming the problem."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from safetensors.torch import save_file

import nst_core
from nst_core.errors import ImageError, WeightsError
from nst_core.image import as_bhwc, from_pil, load_image
from nst_core.layers import conv_names
from nst_core.vgg import expected_conv_shapes
from nst_core.weights import load_weights


def _png(width: int, height: int, color_type: int, bit_depth: int, rows: bytes | None = None) -> bytes:
    """A PNG file written by hand: 16-bit colour (which PIL cannot write) or a header-only bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = zlib.compress(rows if rows is not None else b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _gradient(height=24, width=40) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x / (width - 1), y / (height - 1), 1 - x / (width - 1)], axis=-1)


# ---------------------------------------------------------------------------------------------
# EXIF orientation


def test_exif_orientation_is_applied_by_the_one_loader(tmp_path):
    """A portrait photo stored landscape with an EXIF rotation comes out portrait, as viewers show it."""
    stored = (np.zeros((32, 48, 3), np.uint8))            # stored 48 wide x 32 high
    stored[:, :24] = (255, 0, 0)                          # left half red, right half black
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6                                      # "rotate 90 degrees clockwise to display"
    path = tmp_path / "portrait.png"
    image.save(path, exif=exif)

    loaded = load_image(path)
    assert tuple(loaded.shape) == (1, 48, 32, 3)          # upright: 32 wide x 48 high
    with Image.open(path) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"), np.float32) / 255
        assert tuple(as_bhwc(opened).shape) == (1, 48, 32, 3)   # a PIL image handed in: upright too
    assert np.array_equal(loaded[0].numpy(), expected)
    assert float(loaded[0, :24, :, 0].mean()) == 1.0      # clockwise: the red half is now on top
    assert float(loaded[0, 24:, :, 0].mean()) == 0.0
    # applying it twice does not rotate twice
    assert tuple(from_pil(ImageOps.exif_transpose(Image.open(path))).shape) == (1, 48, 32, 3)


# ---------------------------------------------------------------------------------------------
# decompression bombs, damaged files


@pytest.mark.parametrize("side", [20_000, 10_000])     # above PIL's error limit / in its warning range
def test_decompression_bomb_is_refused_naming_file_and_pixels(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(side, side, 0, 8))              # a tiny file claiming side x side pixels
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert "bomb.png" in message and f"{side * side:,} pixels" in message


@pytest.mark.parametrize("damage", ["truncated_png", "truncated_jpeg", "junk", "empty", "broken_chunk"])
def test_damaged_files_raise_image_error(tmp_path, damage):
    pixels = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    if damage.endswith("jpeg"):
        path = tmp_path / "photo.jpg"
        Image.fromarray(pixels).save(path, quality=90)
    else:
        path = tmp_path / "photo.png"
        Image.fromarray(pixels).save(path)
    data = path.read_bytes()
    data = {"truncated_png": data[: len(data) // 2], "truncated_jpeg": data[: len(data) // 2],
            "junk": b"\x89PNG but not really" * 50, "empty": b"",
            "broken_chunk": data[:40] + b"\xff" * 20 + data[60:]}[damage]
    path.write_bytes(data)
    with pytest.raises(ImageError, match="photo"):
        load_image(path)


def test_folder_given_as_image_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


# ---------------------------------------------------------------------------------------------
# 16-bit files


def test_16_bit_gray_png_scales_to_unit_range(tmp_path):
    values = (_gradient()[..., 0] * 65535).round().astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)                   # PIL writes (and reads) I;16
    loaded = load_image(path)
    assert np.allclose(loaded[0, :, :, 1].numpy(), values / 65535, atol=1e-6)


@pytest.mark.parametrize("mode", ["I", "I;16B", "I;16"])
def test_16_bit_modes_from_pil_scale_to_unit_range(mode):
    values = (_gradient()[..., 0] * 65535).round()
    if mode == "I":                                       # 32-bit ints holding 16-bit samples (TIFF, old PNG)
        image = Image.fromarray(values.astype(np.int32), "I")
    else:
        dtype = ">u2" if mode == "I;16B" else "<u2"
        image = Image.frombytes(mode, (values.shape[1], values.shape[0]), values.astype(dtype).tobytes())
    loaded = from_pil(image)
    assert np.allclose(loaded[0, :, :, 0].numpy(), values / 65535, atol=1e-6)
    assert 0.45 < float(loaded.mean()) < 0.55             # a gradient, not white


def test_16_bit_rgb_png_is_correct(tmp_path):
    values = (_gradient() * 65535).round().astype(np.uint16)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    path = tmp_path / "rgb16.png"
    path.write_bytes(_png(values.shape[1], values.shape[0], 2, 16, rows))
    loaded = load_image(path)
    assert np.abs(loaded[0].numpy() - values / 65535).max() <= 1 / 255


# ---------------------------------------------------------------------------------------------
# tensors and arrays


def test_uint8_tensors_and_arrays_are_scaled():
    pixels = (_gradient() * 255).round().astype(np.uint8)
    for given in (pixels, torch.from_numpy(pixels), torch.from_numpy(pixels)[None].permute(0, 3, 1, 2)):
        image = as_bhwc(given)
        assert image.dtype == torch.float32
        assert torch.allclose(image[0], torch.from_numpy(pixels).float() / 255)


@pytest.mark.parametrize("values, expected", [
    (lambda g: g * 255, "0..255"),                        # 0..255 floats: today an all-white result
    (lambda g: g * 2 - 1, "0..1"),                        # -1..1
    (lambda g: g + 3, "0..1"),
])
def test_float_tensors_outside_unit_range_are_refused(values, expected):
    tensor = torch.from_numpy(values(_gradient()).astype(np.float32))[None]
    with pytest.raises(ImageError, match="0..1") as info:
        as_bhwc(tensor)
    assert expected in str(info.value)


def test_small_overshoot_is_clamped_and_bad_values_refused():
    tensor = torch.from_numpy(_gradient().astype(np.float32))[None] * 1.05 - 0.02   # a bicubic overshoot
    image = as_bhwc(tensor)
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0
    for bad in (torch.full((1, 8, 8, 3), float("nan")), torch.full((1, 8, 8, 3), float("inf"))):
        with pytest.raises(ImageError, match="NaN or infinite"):
            as_bhwc(bad)
    with pytest.raises(ImageError, match="uint8"):
        as_bhwc(torch.ones((1, 8, 8, 3), dtype=torch.int64))


def test_stylize_with_uint8_content_is_not_white(vgg):
    """A uint8 tensor handed to the engine means 0..255 pixels: the result looks like the content."""
    content = (_gradient(32, 32) * 255).round().astype(np.uint8)
    style = torch.from_numpy(_gradient(32, 32)[::-1].copy().astype(np.float32))[None]
    result = nst_core.stylize(torch.from_numpy(content)[None], style, vgg=vgg, steps=2, max_size=32,
                              coarse_to_fine=False)
    assert abs(float(result.image.mean()) - content.mean() / 255) < 0.1     # not ~1.0 (white)
    with pytest.raises(ImageError, match="0..255"):
        nst_core.stylize(torch.from_numpy(content.astype(np.float32))[None], style, vgg=vgg, steps=2,
                         max_size=32, coarse_to_fine=False)


# ---------------------------------------------------------------------------------------------
# fit_image


def test_fit_image_shrinks_keeps_and_upscales():
    from nst_core.image import fit_image
    batch = torch.rand((2, 64, 48, 3))
    assert tuple(fit_image(batch, 32).shape) == (2, 32, 24, 3)
    assert fit_image(batch, 128).shape == batch.shape                 # never enlarged by default
    assert tuple(fit_image(batch, 128, upscale=True).shape) == (2, 128, 96, 3)
    assert torch.equal(fit_image(batch, 0), batch) and torch.equal(fit_image(batch, None), batch)
    shrunk = fit_image(batch, 32)
    assert float(shrunk.min()) >= 0 and float(shrunk.max()) <= 1
    assert abs(float(shrunk.mean()) - float(batch.mean())) < 0.01


# ---------------------------------------------------------------------------------------------
# weights


def _small_vgg16(seed=0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sd = {}
    for name, (out_c, in_c) in zip(conv_names("vgg16"), expected_conv_shapes("vgg16")):
        sd[f"{name}.weight"] = torch.randn((out_c, in_c, 3, 3), generator=generator) * 0.05
        sd[f"{name}.bias"] = torch.zeros(out_c)
    return sd


@pytest.mark.parametrize("key, value, kind", [("conv3_2.weight", float("nan"), "NaN"),
                                              ("conv1_1.bias", float("inf"), "infinite")])
def test_weights_with_non_finite_values_are_refused(tmp_path, key, value, kind):
    sd = _small_vgg16()
    sd[key].view(-1)[5] = value
    sd["conv5_3.weight"].view(-1)[0] = float("nan")        # a later bad tensor: the first one is named
    path = tmp_path / "broken_vgg16.safetensors"
    save_file(sd, str(path))
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    message = str(info.value)
    assert "broken_vgg16.safetensors" in message and key in message and kind in message
    with pytest.raises(WeightsError, match=key.replace(".", r"\.")):
        nst_core.load_vgg(path, normalized=False, device="cpu")


def test_finite_weights_still_load(tmp_path):
    path = tmp_path / "fine_vgg16.safetensors"
    save_file(_small_vgg16(), str(path))
    assert load_weights(path).arch == "vgg16"
