"""The objective: total = α·content + β·style + tv_weight·TV (+ pixel terms) at one output size.

The loss is defined here once. The targets hold what each layer must match (content features P, style
statistics, computed once per size); a `Term` turns one layer's output into its weighted loss; the
objective adds each layer's terms as soon as the forward pass computes the layer, and `combine` makes
the total. nst_core.tiling evaluates the same terms tile by tile (a term that is a sum over positions
is finished from its tiles' sums: `Term.sums`, `Term.loss_of`); nst_core.cuda_graph replays them.

Pixel terms (`PixelTerm`: a name, a weight and a loss of the pixels, e.g. video's temporal consistency)
are added to the total and recorded under their own name in the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from .errors import NSTError
from .losses import content_energy, content_loss, tv_loss
from .precision import FLOAT32, autocast_dtype
from .settings import DEFAULTS, OPTIONS, OptionError
from .statistics.base import StyleStatistic
from .statistics.normalization import relative_loss_scale, relative_strength

TERMS = ("total", "content", "style", "tv")


@dataclass(frozen=True, eq=False)
class Term:
    """One layer's comparison, times `weight` (the layer's weight with the weighting's factors folded in):
    kind "content" = ½ Σ m (F − P)² against the features `target`; kind "style" = `statistic`'s loss
    against its `target`. `mask` [1,1,h,w] at the layer's resolution, None for the whole image."""
    kind: str
    layer: str
    weight: float
    target: Any
    mask: torch.Tensor | None = None
    statistic: StyleStatistic | None = None

    @property
    def additive(self) -> bool:
        """A sum over positions, so that a tiled evaluation can add it up over its tiles."""
        return self.statistic is None or self.statistic.additive

    def loss(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The weighted loss of the whole layer output h."""
        if self.statistic is None:
            return self.weight * content_loss(h, self.target, self.mask)
        return self.weight * self.statistic.loss(h, self.target, self.mask, generator, self.layer)

    def sums(self, h: torch.Tensor, region) -> torch.Tensor:
        """The sums over h, the part `region` (y0, y1, x0, x1) of the layer: ½ Σ m (F − P)² for content,
        the statistic's sums for style (an additive term only)."""
        y0, y1, x0, x1 = region
        mask = None if self.mask is None else self.mask[..., y0:y1, x0:x1].to(h.device, torch.float32)
        if self.statistic is None:
            return content_loss(h, self.target[..., y0:y1, x0:x1], mask)
        return self.statistic.sums(h, None if mask is None else mask.reshape(-1))

    def count(self, region):
        """Σ m over `region` of the layer (its area without a mask)."""
        y0, y1, x0, x1 = region
        return (y1 - y0) * (x1 - x0) if self.mask is None else self.mask[..., y0:y1, x0:x1].float().sum()

    def loss_of(self, sums: torch.Tensor, count) -> torch.Tensor:
        """The weighted loss from the sums over the whole layer and its Σ m (`count`)."""
        if self.statistic is None:
            return self.weight * sums
        value = self.statistic.finish(sums, count)
        return self.weight * self.statistic.distance(value, self.target, self.layer)


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
    directions, drawn anew every evaluation). `precision`: the dtype the convs run in (nst_core.precision).

    `weighting` (nst_core.settings.WEIGHTINGS): "paper" = the terms as the papers define them
    (content_l = ½Σ(F−P)², E_l = Σ(Ĝ−Â)²/(4N²)); the content loss grows with the pixel count and the
    style statistics do not, so a plan's coarse levels pass α scaled by (final area / level area).
    "normalized" = every layer's term divided by its target's energy, the loss of an all-zero output
    (content ‖F−P‖²/‖P‖², masked Σm(F−P)²/Σm P²; Gram ‖Ĝ−Â‖²/‖Â‖²; W2 and sliced W the same way times
    statistics.normalization.relative_loss_scale): dimensionless, so one β gives the same look at every size and
    level, and a pair with strong features weighs no more than one with weak ones. Energies, not means
    over positions: the means' factors (ΣP²/(NM), ΣÂ²/N²) vary with the pair (README "Style strength").
    "relative" (the default) = "normalized" with each style layer's term times 1/d_l (`style_units`, per
    target a unit per layer), d_l the photo's own normalized distance to that painting at that layer,
    measured by the caller (nst_core.photo_distance), so that a strength means the same for every pair
    too; without `style_units` it is "normalized".
    The factors are constants of the targets at this size, folded into each Term's weight.
    """

    def __init__(self, vgg, content=None, style=None, tv_weight: float = 0.0, size=None,
                 content_weight: float | None = None, pixel_terms=(), seed: int = 0,
                 weighting: str = DEFAULTS["weighting"], style_units: Sequence[float] | None = None,
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
        # "relative": each style target's terms in units of the photo's distance to it, measured by the
        # caller (nst_core.api, nst_core.photo_distance); without them the unit is 1 ("normalized")
        if style_units is not None and self.weighting != "relative":
            raise ValueError(f"style_units are the relative weighting's, not {self.weighting!r}'s")
        self.style_units = tuple(tuple(float(u) for u in target) for target in style_units or ())
        # the convs' dtype under autocast, None = float32 (nst_core.precision; the run plan's level decides)
        self.autocast = autocast_dtype(precision)
        # the targets for this size, computed once, outside the step loop, as normal tensors (ComfyUI runs
        # nodes under inference mode, whose tensors autograd refuses to save for backward)
        with torch.inference_mode(False):
            self.terms = self._build_terms()

    def _build_terms(self) -> dict[str, list[Term]]:
        """{layer: [Term]}: what each layer's output is compared with. Under the size-free weightings each
        weight includes 1 / the target's energy (`_normalizer`)."""
        terms: dict[str, list[Term]] = {}
        if self.content is not None:
            feats, masks = self.content.features_at(self.size), self.content.masks_at(self.size)
            for name, w in zip(self.content.layers, self.content.layer_weights):
                w = w * self._normalizer("content", None, feats[name], masks[name], name)
                terms.setdefault(name, []).append(Term("content", name, w, feats[name], masks[name]))
        for index, style in enumerate(self.styles):
            share = style.weight / self.style_weight
            # the pair's units (nst_core.photo_distance): 1/d_l per layer, times the statistic's strength there
            units = ([u * relative_strength(style.statistic.name, name)
                      for u, name in zip(self.style_units[index], style.layers)]
                     if self.style_units else (1.0,) * len(style.layers))
            targets, masks = style.targets_at(self.size), style.masks_at(self.size)
            for name, w, unit in zip(style.layers, style.layer_weights, units):
                w = w * share * unit * self._normalizer("style", style.statistic, targets[name], None, name)
                terms.setdefault(name, []).append(Term("style", name, w, targets[name], masks[name], style.statistic))
        return terms

    def _normalizer(self, kind: str, statistic, target, mask, layer: str) -> float:
        """1 under "paper"; under "normalized" the factor that makes the term relative to its target:
        1 / (½Σ m P²) for content (a content mask counts only its region's energy), relative_loss_scale / energy
        for a style statistic (its loss at an all-zero output; a style mask needs nothing: the masked
        statistics are already weighted means over the region)."""
        if self.weighting == "paper":
            return 1.0
        if kind == "content":
            energy = content_energy(target, mask)
        else:
            energy = statistic.energy(target, layer) / relative_loss_scale(statistic.name, layer)
        if not energy > 0:
            raise OptionError("weighting", f"the {kind} target is all zero at {layer}: its relative loss is "
                                           "undefined; use weighting=paper or another layer")
        return 1.0 / energy

    def layer_losses(self, name: str, h: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """[(kind, weighted loss)] of the terms at layer `name` for its output `h` (the whole map), in
        float32 even under autocast."""
        with torch.autocast(h.device.type, enabled=False):
            return [(term.kind, term.loss(h, self.generator)) for term in self.terms.get(name, ())]

    def layer_total(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """α·content + β·style (a term of weight 0 left out, so that autograd skips it)."""
        total = content.new_zeros(())
        if self.content_weight:
            total = total + self.content_weight * content
        if self.style_weight:
            total = total + self.style_weight * style
        return total

    def combine(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor, layer_total=None):
        """(total, {term: value}): the layer terms' `layer_total` (default α·content + β·style) plus
        tv_weight·TV and the pixel terms of x."""
        zero = x.new_zeros(())
        total = self.layer_total(content, style) if layer_total is None else layer_total
        tv = tv_loss(x) if self.tv_weight else zero
        if self.tv_weight:
            total = total + self.tv_weight * tv
        parts = {"content": content, "style": style, "tv": tv}
        for term in self.pixel_terms:
            value = term.loss(x)
            parts[term.name] = value
            if term.weight:
                total = total + term.weight * value
        return total, {"total": total, **parts}

    def layer_terms(self, x: torch.Tensor, layers=None, after: str | None = None):
        """(content, style): the terms of `layers` (default: all) summed from one forward pass of x, the
        input pixels, or the output of the layer `after` (nst_core.tiling's stitched map)."""
        losses: dict[str, list] = {"content": [], "style": []}

        def on_feature(name, h):
            # each layer's loss right after the layer, so that its backward runs when the backward pass
            # reaches that layer: peak memory as a plain loop's
            for kind, loss in self.layer_losses(name, h):
                losses[kind].append(loss)

        # the convs in the level's precision (autocast); the statistics and the losses stay in float32
        with torch.autocast(x.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            self.vgg.features(x, self.layers if layers is None else layers, on_feature, after=after)
        zero = x.new_zeros((), dtype=torch.float32)
        return sum(losses["content"], zero), sum(losses["style"], zero)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, {term: value}) for pixels x [1,3,H,W]; differentiable in x."""
        zero = x.new_zeros(())
        content, style = self.layer_terms(x) if self.layers else (zero, zero)
        return self.combine(x, content, style)


def with_gradient(x: torch.Tensor, value: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """`value` attached to x with a gradient computed elsewhere (nst_core.tiling, nst_core.cuda_graph):
    its backward adds grad_output · gradient to x's."""
    return _WithGradient.apply(x, value, gradient)


class _WithGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, value, gradient):
        ctx.save_for_backward(gradient)
        return value.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        (gradient,) = ctx.saved_tensors
        return gradient * grad, None, None
