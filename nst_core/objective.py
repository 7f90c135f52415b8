"""The objective: total = α·content + β·style + tv_weight·TV at one output size, from one forward pass.

This is the only place the loss terms are summed. The targets hold what each layer must match (content
features P, style Grams A, computed once per size); the objective evaluates the layers the targets name
and adds each layer's term as soon as the layer is computed.

Pixel terms (`PixelTerm`: a name, a weight and a loss of the pixels, e.g. video's temporal consistency)
are added to the total and recorded under their own name in the history.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .errors import NSTError
from .precision import FLOAT32, autocast_dtype
from .photo_distance import style_scales as photo_style_scales
from .settings import DEFAULTS, OPTIONS, OptionError
from .losses import content_energy, content_loss, tv_loss
from .statistics.normalization import relative_scale

TERMS = ("total", "content", "style", "tv")


class PixelTerm:
    """A loss on the pixels themselves, added as weight * loss(x); `loss` gets x [1,3,H,W] at the level's
    size (a term that holds images of its own resizes them to x's size)."""

    name = "pixel"
    weight = 1.0

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Objective:
    """total = content_weight·Σ_l content_l + style_weight·Σ_k (β_k/β_1) Σ_l w_l E_kl + tv_weight·TV
    at `size` (H, W).

    `style`: one StyleTarget or several (each with its own β_k, statistic and mask: one style per region);
    the recorded "style" term is in units of the first target's β (= β_1, `style_weight`). `content_weight`
    defaults to the content target's α. `seed` seeds the random parts of a statistic (sliced Wasserstein's
    directions, drawn anew every evaluation).

    `weighting` (nst_core.settings.WEIGHTINGS): "paper" = the terms above as the papers define them
    (content_l = ½Σ(F−P)², E_l = Σ(Ĝ−Â)²/(4N²)); the content loss grows with the pixel count and the
    style statistics do not, so a plan's coarse levels pass α scaled by (final area / level area).
    "normalized" = every layer's term divided by its target's energy, the loss of an all-zero output:
    content_l = ‖F−P‖²/‖P‖² (masked: Σm(F−P)²/Σm P²), Gram E_l = ‖Ĝ−Â‖²/‖Â‖², W2 and sliced W the same way
    times statistics.normalization.relative_scale. Each term is then dimensionless and does not grow with
    the pixel count, so one β gives the same look at every size and every level, and a pair with strong
    features weighs no more than one with weak ones. The factors are constants of the targets at this size,
    folded into the per-term weights (`terms`), so the evaluation (and tiling.TiledObjective, which reads
    `terms`) is the same for all weightings.
    "relative" (the default) = "normalized" with each style target's terms times 1/d (`style_scales`), d the
    photo's own normalized distance to that painting (nst_core.photo_distance), so that a strength means
    the same for every pair too; without a content target it is "normalized".
    `precision`: the dtype the convs run in, the run plan level's (nst_core.precision); float32 by default.

    Why target energies and not means over positions (the other size-free candidate, content
    Σ(F−P)²/(NM), style Σ(Ĝ−Â)²/N²): means differ from energies by a factor per term, ΣP²/(NM) for the
    content and ΣÂ²/N² per style layer, and those factors vary with the pair: measured on the 5 pairs of
    nst_core.bench.look, the strength a fixed mean-weighting β amounts to (in energy units) spreads 7.5x over
    the pairs at 128 px, 15x at 256 px and 20x at 384 px (and 2x over the sizes for the astronaut + The
    Scream), so means would still paint one pair and tint another. With energies, strength 3
    gave a relu4_2 content distance of 0.61-0.69 on all 5 pairs at 128 px (30 steps; paper β 5e6:
    0.67-1.02) and 0.62-0.68 for the cat + Starry Night at 96, 128 and 192 px (100 steps).
    """

    def __init__(self, vgg, content=None, style=None, tv_weight: float = 0.0, size=None,
                 content_weight: float | None = None, pixel_terms=(), seed: int = 0,
                 weighting: str = DEFAULTS["weighting"], style_scales: Sequence[float] | None = None,
                 precision: str = FLOAT32):
        self.weighting = OPTIONS["weighting"].check(weighting)
        self.pixel_terms = tuple(pixel_terms)
        self.term_names = TERMS + tuple(term.name for term in self.pixel_terms)
        styles = [] if style is None else list(style) if isinstance(style, (list, tuple)) else [style]
        if content is None and not styles and tv_weight == 0 and not self.pixel_terms:
            raise NSTError("nothing to optimize: give a content target, a style target or a TV weight")
        self.vgg = vgg.grad_ready()
        self.content, self.styles, self.tv_weight = content, styles, float(tv_weight)
        self.content_weight = (content.weight if content is not None else 0.0) if content_weight is None \
            else float(content_weight)
        self.style_weight = styles[0].weight if styles else 0.0
        if len(styles) > 1 and self.style_weight == 0:
            self.style_weight = 1.0          # the first region's β is 0: record the others in β units
        self.generator = torch.Generator().manual_seed(int(seed))
        if size is None:
            if content is None:
                raise NSTError("give the output size when there is no content target")
            size = content.size
        self.size = tuple(int(s) for s in size)
        if self.content_weight == 0 and self.style_weight == 0 and self.tv_weight == 0 and \
                not any(term.weight for term in self.pixel_terms):
            raise OptionError("content_weight", "every loss weight is zero (content α = 0, style β = "
                              + ("0" if styles else "none: no style target") + ", tv_weight = 0): "
                              "there is nothing to optimize")
        layers: list[str] = []
        for target in ([content] if content is not None else []) + styles:
            layers += [name for name in target.layers if name not in layers]
        self.layers = layers
        if layers:
            self.vgg.check_size(*self.size, layers)
            # memory is the run plan's decision (nst_core.plan.fit_memory: untiled or tiled, L-BFGS pairs)
        # "relative": each style target's terms in units of the photo's distance to it (1/d), measured at the
        # look size (or this size when smaller) unless given (nst_core.api measures them once for a run)
        if style_scales is not None and self.weighting != "relative":
            raise ValueError(f"style_scales are the relative weighting's, not {self.weighting!r}'s")
        if style_scales is None and self.weighting == "relative":
            style_scales = photo_style_scales(self.vgg, content, styles, self.size)
        self.style_scales = tuple(float(s) for s in style_scales or ())
        # the convs' dtype under autocast, None = float32 (nst_core.precision; the run plan's level decides)
        self.autocast = autocast_dtype(self.vgg.device, precision)
        # the targets for this size, computed once, outside the step loop, as normal tensors (ComfyUI runs
        # nodes under inference mode, whose tensors autograd refuses to save for backward)
        with torch.inference_mode(False):
            self.terms = self._layer_terms()

    def _layer_terms(self) -> dict[str, list]:
        """{layer: [(kind, weight, statistic, target, mask)]}: what each layer's output is compared with
        (statistic None for content; mask None where the term covers the whole image). Under weighting
        "normalized" each weight includes 1 / the target's energy (`_normalizer`)."""
        terms: dict[str, list] = {}
        if self.content is not None:
            feats, masks = self.content.features_at(self.size), self.content.masks_at(self.size)
            for name, w in zip(self.content.layers, self.content.layer_weights):
                w = w * self._normalizer("content", None, feats[name], masks[name], name)
                terms.setdefault(name, []).append(("content", w, None, feats[name], masks[name]))
        for index, style in enumerate(self.styles):
            share = style.weight / self.style_weight
            if self.style_scales:                    # the pair's unit (nst_core.photo_distance): 1/d
                share *= self.style_scales[index]
            targets, masks = style.targets_at(self.size), style.masks_at(self.size)
            for name, w in zip(style.layers, style.layer_weights):
                w = w * share * self._normalizer("style", style.statistic, targets[name], None, name)
                terms.setdefault(name, []).append(("style", w, style.statistic, targets[name], masks[name]))
        return terms

    def _normalizer(self, kind: str, statistic, target, mask, layer: str) -> float:
        """1 under "paper"; under "normalized" the factor that makes the term relative to its target:
        1 / (½Σ m P²) for content (a content mask counts only its region's energy), relative_scale / energy
        for a style statistic (its loss at an all-zero output; a style mask needs nothing: the masked
        statistics are already weighted means over the region)."""
        if self.weighting == "paper":
            return 1.0
        if kind == "content":
            energy = content_energy(target, mask)
        else:
            energy = statistic.energy(target, layer) / relative_scale(statistic.name, layer)
        if not energy > 0:
            raise OptionError("weighting", f"the {kind} target is all zero at {layer}: its relative loss is "
                                           "undefined; use weighting=paper or another layer")
        return 1.0 / energy

    def layer_losses(self, name: str, h: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """[(kind, weighted loss)] of the terms at layer `name` for its output `h` (the whole map), in
        float32 even under autocast."""
        losses = []
        with torch.autocast(h.device.type, enabled=False):
            for kind, w, statistic, target, mask in self.terms.get(name, ()):
                if kind == "content":
                    loss = content_loss(h, target, mask)
                else:
                    loss = statistic.loss(h, target, mask, self.generator, name)
                losses.append((kind, w * loss))
        return losses

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, {term: value}) for pixels x [1,3,H,W]; differentiable in x."""
        zero = x.new_zeros(())
        layer_losses: dict[str, list] = {"content": [], "style": []}

        def on_feature(name, h):
            # each layer's loss right after the layer, so that its backward runs when the backward pass
            # reaches that layer: peak memory as a plain loop's
            for kind, loss in self.layer_losses(name, h):
                layer_losses[kind].append(loss)

        if self.layers:
            # the convs in the level's precision (autocast); the Grams and the losses stay in float32
            with torch.autocast(x.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                self.vgg.features(x, self.layers, on_feature)
        content = sum(layer_losses["content"]) if layer_losses["content"] else zero
        style = sum(layer_losses["style"]) if layer_losses["style"] else zero
        tv = tv_loss(x) if self.tv_weight else zero
        total = zero
        if self.content_weight:
            total = total + self.content_weight * content
        if self.style_weight:
            total = total + self.style_weight * style
        if self.tv_weight:
            total = total + self.tv_weight * tv
        parts = {"content": content, "style": style, "tv": tv}
        for term in self.pixel_terms:
            value = term.loss(x)
            parts[term.name] = value
            if term.weight:
                total = total + term.weight * value
        return total, {"total": total, **parts}
