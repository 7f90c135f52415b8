"""A plain, tutorial-style Gatys loop: the baseline that `python -m nst_core.bench` measures the engine against.

Written the way the PyTorch tutorial (and most standalone scripts) do it: an nn.Sequential VGG-19 with
content/style loss modules inserted after the chosen layers and cut after the last one, non-inplace ReLUs,
torch.optim.LBFGS over the pixels, one closure call per step. It is built from the SAME weights, input
convention, layers and loss definitions as the engine (nst_core.losses), so both losses are comparable:

    total = content_weight * ½Σ(F−P)²  +  style_weight * Σ_l w_l Σ(Ĝ−Â)²/(4N²)   (Ĝ = FFᵀ/M)

Nothing here is used by the engine itself.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from ..vgg import InputConvention


class ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target = target.detach()
        self.loss = None

    def forward(self, x):
        self.loss = 0.5 * (x - self.target).pow(2).sum()
        return x


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    f = x.view(b * c, h * w)
    return f @ f.t() / (h * w)


class StyleLoss(nn.Module):
    def __init__(self, target_features: torch.Tensor):
        super().__init__()
        self.target = gram_matrix(target_features).detach()
        self.loss = None

    def forward(self, x):
        n = x.shape[1]
        self.loss = (gram_matrix(x) - self.target).pow(2).sum() / (4.0 * n * n)
        return x


def build_model(vgg, content_image: torch.Tensor, style_image: torch.Tensor,
                content_layers=("relu4_2",), style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")):
    """nn.Sequential copy of `vgg`'s layers with loss modules after the chosen layers, cut after the last.

    content_image / style_image: [1,3,H,W] RGB 0..1 (the style already at the size wanted for its Grams).
    Returns (model, content_losses, style_losses).
    """
    device = vgg.device
    model = nn.Sequential(InputConvention(vgg.convention).to(device))
    trunk = nn.Sequential(model[0])  # the same layers without loss modules: computes the targets
    content_losses, style_losses = [], []
    conv_index = 0
    with torch.inference_mode(False):
        convs = [copy.deepcopy(c) for c in vgg.convs]
        for conv in convs:  # plain contiguous (NCHW) weights, as a standalone script loads them
            conv.weight.data = conv.weight.data.contiguous()
        for name in vgg.layer_names:
            kind = name[:4]
            if kind == "conv":
                layer = convs[conv_index]
                conv_index += 1
            elif kind == "relu":
                layer = nn.ReLU(inplace=False)
            else:
                layer = nn.MaxPool2d(2, 2) if vgg.pooling == "max" else nn.AvgPool2d(2, 2)
            model.add_module(name, layer)
            trunk.add_module(name, layer)
            if name in content_layers:
                with torch.no_grad():
                    target = trunk(content_image.to(device))
                loss = ContentLoss(target)
                model.add_module(f"content_loss_{name}", loss)
                content_losses.append(loss)
            if name in style_layers:
                with torch.no_grad():
                    target = trunk(style_image.to(device))
                loss = StyleLoss(target)
                model.add_module(f"style_loss_{name}", loss)
                style_losses.append(loss)
            if len(content_losses) == len(content_layers) and len(style_losses) == len(style_layers):
                break
        model.requires_grad_(False)
        model.eval()
    return model, content_losses, style_losses


def run_style_transfer(model, content_losses, style_losses, input_image: torch.Tensor, steps: int = 500,
                       content_weight: float = 1.0, style_weight: float = 1e6, layer_weights=None,
                       history_size: int = 100, record: bool = True):
    """Classic L-BFGS loop; one step = one closure evaluation (forward + backward + L-BFGS update).

    Returns (image [1,3,H,W] clamped to 0..1, history): history[i] = {"step", "total", "time"} where time
    is seconds since the start when step i's loss was evaluated (read back once at the end).
    """
    layer_weights = layer_weights or [1.0 / len(style_losses)] * len(style_losses)
    with torch.inference_mode(False), torch.enable_grad():
        x = input_image.detach().clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=int(steps), history_size=history_size,
                                      tolerance_grad=-1, tolerance_change=-1)
        losses, times = [], []
        start = time.perf_counter()

        def closure():
            optimizer.zero_grad()
            model(x)
            content = sum(l.loss for l in content_losses)
            style = sum(w * l.loss for w, l in zip(layer_weights, style_losses))
            loss = content_weight * content + style_weight * style
            loss.backward()
            if record:
                losses.append(loss.detach())
                times.append(time.perf_counter() - start)
            return loss

        optimizer.step(closure)
        result = x.detach().clamp(0, 1)
    history = [{"step": i + 1, "total": float(l), "time": t} for i, (l, t) in enumerate(zip(losses, times))]
    return result, history


def reference_stylize(vgg, content_image: torch.Tensor, style_image: torch.Tensor, steps: int = 500,
                      content_layers=("relu4_2",), style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                      content_weight: float = 1.0, style_weight: float = 1e6):
    """Build and run the baseline from the content image (init = content). Images [1,3,H,W] RGB 0..1."""
    model, cl, sl = build_model(vgg, content_image, style_image, content_layers, style_layers)
    return run_style_transfer(model, cl, sl, content_image.to(vgg.device), steps, content_weight, style_weight)
