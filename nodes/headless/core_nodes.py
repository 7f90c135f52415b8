"""Headless stand-ins for ComfyUI core nodes (LoadImage, SaveImage, PreviewImage, ...).

Example workflows use ComfyUI's own image nodes, so the headless executor needs
versions with the same names, inputs and outputs for the same JSON to run in both
places. They are exported as CORE_NODE_CLASS_MAPPINGS and must never be merged
into the pack's NODE_CLASS_MAPPINGS (inside ComfyUI they would shadow the real ones).
Files are only ever read from / written into the run's input, output and temp folders, and
numbered files are claimed atomically (files.write_new_file).
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import random
import sys

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from .files import check_prefix, resolve_input_file, save_image_path, write_new_file
from .runtime import get_directory

__all__ = ["CORE_NODE_CLASS_MAPPINGS", "CORE_NODE_DISPLAY_NAME_MAPPINGS"]

MAX_RESOLUTION = 16384


# ---------------------------------------------------------------- image nodes

def _rgb_array(frame: Image.Image) -> np.ndarray:
    """[H,W,3] float32 in 0..1. 16-bit greyscale (modes I;16*, and I as Pillow reads 16-bit PNGs)
    is scaled by 1/65535: converting it to RGB directly clips it to nearly white."""
    if frame.mode.startswith("I"):
        grey = np.clip(np.asarray(frame).astype(np.float32) / 65535.0, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.array(frame.convert("RGB")).astype(np.float32) / 255.0


class LoadImage:
    """Loads an image from the input folder as IMAGE [1,H,W,3] and MASK (1 - alpha)."""

    @classmethod
    def INPUT_TYPES(cls):
        input_dir = get_directory("input")
        files = []
        if os.path.isdir(input_dir):
            files = [f for f in os.listdir(input_dir) if os.path.isfile(os.path.join(input_dir, f))
                     and (mimetypes.guess_type(f, strict=False)[0] or "").startswith("image/")]
        return {"required": {"image": (sorted(files), {"image_upload": True})}}

    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    def load_image(self, image):
        path = resolve_input_file(image)
        img = Image.open(path)
        images, masks, size = [], [], None
        for frame in ImageSequence.Iterator(img):
            frame = ImageOps.exif_transpose(frame)
            size = size or frame.size
            if frame.size != size:
                continue
            images.append(torch.from_numpy(_rgb_array(frame))[None,])
            if "A" in frame.getbands():
                alpha = np.array(frame.getchannel("A")).astype(np.float32) / 255.0
                mask = 1.0 - torch.from_numpy(alpha)
            elif frame.mode == "P" and "transparency" in frame.info:
                alpha = np.array(frame.convert("RGBA").getchannel("A")).astype(np.float32) / 255.0
                mask = 1.0 - torch.from_numpy(alpha)
            else:
                mask = torch.zeros((64, 64), dtype=torch.float32)
            masks.append(mask.unsqueeze(0))
        if len(images) > 1 and img.format != "MPO":
            return (torch.cat(images, dim=0), torch.cat(masks, dim=0))
        return (images[0], masks[0])

    @classmethod
    def IS_CHANGED(cls, image):
        with open(resolve_input_file(image), "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        try:
            path = resolve_input_file(image)
        except ValueError as exc:
            return str(exc)
        if not os.path.isfile(path):
            return f"Invalid image file: {image} (not found in {os.path.dirname(path)})"
        return True


class SaveImage:
    """Saves images as {prefix}_{counter:05}_.png in the output folder with the workflow embedded."""

    def __init__(self):
        self.kind = "output"
        self.type = "output"
        self.prefix_append = ""
        self.compress_level = 4

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": "The prefix for the file to save."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to the output directory."

    @classmethod
    def VALIDATE_INPUTS(cls, filename_prefix="ComfyUI"):
        # Headless addition: refuse a prefix that leaves the output folder before anything runs.
        if isinstance(filename_prefix, str):
            try:
                check_prefix(filename_prefix, os.path.realpath(get_directory("output")))
            except ValueError as exc:
                return str(exc)
        return True

    def save_images(self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        out_dir = get_directory(self.kind)
        folder, filename, counter, subfolder = save_image_path(
            filename_prefix + self.prefix_append, out_dir, images[0].shape[1], images[0].shape[0])
        results = []
        for batch_number, image in enumerate(images):
            array = np.clip(255.0 * image.detach().cpu().float().numpy(), 0, 255).astype(np.uint8)
            if array.ndim == 3 and array.shape[-1] == 1:
                array = array[..., 0]
            metadata = PngInfo()
            if prompt is not None:
                metadata.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                metadata.add_text(key, json.dumps(value))
            base = filename.replace('%batch_num%', str(batch_number))
            picture = Image.fromarray(array)
            path, counter = write_new_file(
                folder, lambda n: f"{base}_{n:05}_.png",
                lambda fh: picture.save(fh, format="PNG", pnginfo=metadata, compress_level=self.compress_level),
                first=counter)
            results.append({"filename": os.path.basename(path), "subfolder": subfolder, "type": self.type})
            counter += 1
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    """Like SaveImage but into the temp folder (never the output folder)."""

    def __init__(self):
        super().__init__()
        self.kind = "temp"
        self.type = "temp"
        self.prefix_append = "_temp_" + "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        self.compress_level = 1

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    VALIDATE_INPUTS = None


def _upscale(samples, width, height, method, crop):
    """ComfyUI's common_upscale for NCHW tensors."""
    if crop == "center":
        old_w, old_h = samples.shape[-1], samples.shape[-2]
        old_aspect, new_aspect = old_w / old_h, width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        samples = samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
    if method == "lanczos":
        out = []
        for image in samples:
            arr = np.clip(255.0 * image.movedim(0, -1).cpu().numpy(), 0, 255).astype(np.uint8)
            pil = Image.fromarray(arr).resize((width, height), resample=Image.Resampling.LANCZOS)
            out.append(torch.from_numpy(np.array(pil).astype(np.float32) / 255.0).movedim(-1, 0))
        return torch.stack(out).to(samples.device, samples.dtype)
    return torch.nn.functional.interpolate(samples, size=(height, width), mode=method)


class ImageScale:
    upscale_methods = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
    crop_methods = ["disabled", "center"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "upscale_method": (cls.upscale_methods,),
                             "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                             "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                             "crop": (cls.crop_methods,)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"

    def upscale(self, image, upscale_method, width, height, crop):
        if width == 0 and height == 0:
            return (image,)
        samples = image.movedim(-1, 1)
        if width == 0:
            width = max(1, round(samples.shape[3] * height / samples.shape[2]))
        elif height == 0:
            height = max(1, round(samples.shape[2] * width / samples.shape[3]))
        return (_upscale(samples, width, height, upscale_method, crop).movedim(1, -1),)


class ImageScaleBy:
    upscale_methods = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "upscale_method": (cls.upscale_methods,),
                             "scale_by": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"

    def upscale(self, image, upscale_method, scale_by):
        samples = image.movedim(-1, 1)
        width, height = round(samples.shape[3] * scale_by), round(samples.shape[2] * scale_by)
        return (_upscale(samples, width, height, upscale_method, "disabled").movedim(1, -1),)


class ImageInvert:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "invert"
    CATEGORY = "image"

    def invert(self, image):
        return (1.0 - image,)


class ImageBatch:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"
    CATEGORY = "image"

    def batch(self, image1, image2):
        if image1.shape[1:] != image2.shape[1:]:
            image2 = _upscale(image2.movedim(-1, 1), image1.shape[2], image1.shape[1], "bilinear", "center").movedim(1, -1)
        return (torch.cat((image1, image2), dim=0),)


class EmptyImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                             "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
                             "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "generate"
    CATEGORY = "image"

    def generate(self, width, height, batch_size=1, color=0):
        channels = [torch.full([batch_size, height, width, 1], ((color >> shift) & 0xFF) / 0xFF) for shift in (16, 8, 0)]
        return (torch.cat(channels, dim=-1),)


# ---------------------------------------------------------------- text preview (comfy_extras/nodes_preview_any.py)

class _AnyType(str):
    """ComfyUI's IO.ANY ("*"): a type that matches every other type (its __ne__ is always False)."""

    def __ne__(self, other):
        return False


ANY = _AnyType("*")


class PreviewAny:
    """Shows any value as text in the UI (ComfyUI 0.3.64 core node "Preview Any").

    Headless, the text is in the run's ui outputs: result.outputs[node_id]["text"][0].
    """

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": (ANY, {})}}

    RETURN_TYPES = ()
    FUNCTION = "main"
    OUTPUT_NODE = True
    CATEGORY = "utils"

    def main(self, source=None):
        value = "None"
        if isinstance(source, str):
            value = source
        elif isinstance(source, (int, float, bool)):
            value = str(source)
        elif source is not None:
            try:
                value = json.dumps(source)
            except Exception:
                try:
                    value = str(source)
                except Exception:
                    value = "source exists, but could not be serialized."
        return {"ui": {"text": (value,)}}


# ---------------------------------------------------------------- primitives (ComfyUI's nodes_primitive)

def _primitive(node_id: str, typ: str, options: dict):
    class Primitive:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"value": (typ, dict(options))}}

        RETURN_TYPES = (typ,)
        FUNCTION = "execute"
        CATEGORY = "utils/primitive"

        def execute(self, value):
            return (value,)

    Primitive.__name__ = Primitive.__qualname__ = node_id
    return Primitive


CORE_NODE_CLASS_MAPPINGS = {
    "LoadImage": LoadImage,
    "SaveImage": SaveImage,
    "PreviewImage": PreviewImage,
    "ImageScale": ImageScale,
    "ImageScaleBy": ImageScaleBy,
    "ImageInvert": ImageInvert,
    "ImageBatch": ImageBatch,
    "EmptyImage": EmptyImage,
    "PreviewAny": PreviewAny,
    "PrimitiveInt": _primitive("PrimitiveInt", "INT", {"min": -sys.maxsize, "max": sys.maxsize,
                                                       "control_after_generate": True}),
    "PrimitiveFloat": _primitive("PrimitiveFloat", "FLOAT", {"min": -sys.maxsize, "max": sys.maxsize}),
    "PrimitiveString": _primitive("PrimitiveString", "STRING", {}),
    "PrimitiveStringMultiline": _primitive("PrimitiveStringMultiline", "STRING", {"multiline": True}),
    "PrimitiveBoolean": _primitive("PrimitiveBoolean", "BOOLEAN", {}),
}

CORE_NODE_DISPLAY_NAME_MAPPINGS = {
    "LoadImage": "Load Image",
    "SaveImage": "Save Image",
    "PreviewImage": "Preview Image",
    "ImageScale": "Upscale Image",
    "ImageScaleBy": "Upscale Image By",
    "ImageInvert": "Invert Image",
    "ImageBatch": "Batch Images",
    "PreviewAny": "Preview Any",
    "PrimitiveInt": "Int",
    "PrimitiveFloat": "Float",
    "PrimitiveString": "String",
    "PrimitiveStringMultiline": "String (Multiline)",
    "PrimitiveBoolean": "Boolean",
}
