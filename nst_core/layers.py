"""VGG architectures and the layer names of the papers (conv1_1, relu1_1, pool1, ...)."""

from __future__ import annotations

from .errors import LayerError

# Output channels of each conv, "M" for a pooling layer (Simonyan & Zisserman 2014, configs D and E).
ARCHITECTURES: dict[str, list] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def conv_names(arch: str) -> list[str]:
    """The conv layer names of an architecture in forward order."""
    return [name for name in layer_names(arch) if name.startswith("conv")]


def layer_names(arch: str) -> tuple[str, ...]:
    """Every named layer (conv, relu, pool) of an architecture in forward order."""
    if arch not in ARCHITECTURES:
        raise LayerError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    names: list[str] = []
    block, index = 1, 1
    for item in ARCHITECTURES[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return tuple(names)


def arch_for_conv_count(count: int) -> str | None:
    """vgg16 for 13 convs, vgg19 for 16, else None."""
    for arch, spec in ARCHITECTURES.items():
        if sum(1 for item in spec if item != "M") == count:
            return arch
    return None


def block_of(layer: str) -> int:
    """The block number of a layer name (conv4_2 -> 4, pool3 -> 3)."""
    digits = layer[4:] if layer.startswith(("conv", "relu", "pool")) else ""
    return int(digits.split("_")[0])


def min_input_size(layer: str) -> int:
    """The smallest input side for which `layer` still has at least one pixel."""
    pools_before = block_of(layer) - (0 if layer.startswith("pool") else 1)
    return 2 ** pools_before


def parse_layers(layers, valid: tuple[str, ...]) -> list[str]:
    """Accept "conv1_1, conv2_1" or a sequence of names; check every name against `valid`."""
    if isinstance(layers, str):
        layers = [part.strip() for part in layers.replace(";", ",").split(",")]
    names = [str(name).strip() for name in layers if str(name).strip()]
    if not names:
        raise LayerError("no layer names given")
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise LayerError(
            f"unknown layer name(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(valid)}")
    return names


VGG19_LAYERS = layer_names("vgg19")
VGG16_LAYERS = layer_names("vgg16")
