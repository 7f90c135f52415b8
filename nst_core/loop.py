"""The optimization loop: executes a plan's levels over the pixels, with callbacks, guards and a history.

The plan (nst_core.plan.decide) is the whole decision: the loop fits no memory, resolves no weighting and
measures nothing. Only the image is optimized; losses are read back from the device only when a callback,
a guard or the end needs them.

Guards: a non-finite loss, or a first-order (Adam/SGD) loss that climbs DIVERGENCE_FACTOR x above the
best seen at this level (or a saturated image above the best loss), ends the run with the best image seen
and a warning (`Result.stopped` "non-finite loss" or "diverged"). L-BFGS without a line search spikes for
a step or two and recovers, so it counts as diverged only after LBFGS_PATIENCE steps above the factor.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .cuda_graph import GraphedObjective, graphable
from . import memory
from .errors import ImageError
from .image import resize, to_bhwc, to_nchw
from .lbfgs import VectorFreeLBFGS
from .objective import Objective
from .options import RunOptions
from .photo_distance import describe as describe_distance
from .plan import Level, RunPlan
from .settings import DEFAULT_LR, INITS, LBFGS_PAIRS, OPTIMIZERS, OptionError
from .tiling import TiledObjective

DIVERGENCE_FACTOR = 10.0
# share of pixels pinned at 0 or 1 that marks a blown-up first-order run (a stylized photo has < 5 %)
SATURATED_SHARE = 0.5
LBFGS_PATIENCE = 20


@dataclass
class Result:
    """What a run gives back: the image(s) [B,H,W,3], the per-step loss log (`history`), the plan it
    executed and the options it ran with, why it stopped early (None, "callback", "non-finite loss",
    "diverged") and warnings (the plan's notes first). `describe()`: the text a report or summary shows."""
    image: torch.Tensor
    history: list[dict] = field(default_factory=list)
    stopped: str | None = None
    warnings: list[str] = field(default_factory=list)
    plan: RunPlan | None = None
    options: RunOptions | None = None

    @property
    def losses(self) -> dict:
        """The last recorded losses."""
        return self.history[-1] if self.history else {}

    @property
    def style_units(self) -> tuple[tuple[float, ...], ...]:
        """Per style target its layers' units 1/d_l under weighting "relative" (nst_core.photo_distance)."""
        return self.plan.style_units if self.plan is not None else ()

    def describe(self) -> str:
        """What ran, for a node report or a CLI summary: the levels (size, precision, tiles, look size, steps;
        L-BFGS pairs where memory kept fewer), the weighting (and whether an older workflow's β switched it
        to paper), the photo's distance, divergence stops. One line per fact."""
        if self.plan is None:
            return ""
        plan, lines = self.plan, []
        lines.append(f"plan: {plan.describe()}")
        optimizer = self.options.optimizer if self.options is not None else "lbfgs"
        pairs = sorted({lv.lbfgs_pairs for lv in plan.levels if lv.lbfgs_pairs < LBFGS_PAIRS})
        if pairs and optimizer == "lbfgs":
            lines.append(f"L-BFGS pairs {', '.join(map(str, pairs))} to fit memory")
        asked = self.options.weighting if self.options is not None else plan.weighting
        switched = " (an older workflow's paper β: switched from " + asked + ")" if asked != plan.weighting else ""
        lines.append(f"weighting {plan.weighting}{switched}{describe_distance(plan.style_units)}")
        for (h, w), units in plan.units.levels:          # a level larger than the look size: its own size's
            lines.append(f"at {w}x{h} px{describe_distance(units)}")
        bf16 = [lv for lv in plan.levels if lv.precision != "float32"]
        if bf16:
            lines.append(f"{len(bf16)} of {len(plan.levels)} levels in {bf16[0].precision}")
        if self.stopped in ("diverged", "non-finite loss"):
            lines.append(f"stopped early: {self.stopped}")
        return "\n".join(lines)

    @classmethod
    def batch(cls, results: Sequence["Result"]) -> "Result":
        """One Result for the items of a batch (same size): images stacked, histories joined (each entry
        keeps its item as "stage"), the first early stop and every warning."""
        if len(results) == 1:
            return results[0]
        return cls(torch.cat([r.image for r in results]), [h for r in results for h in r.history],
                   next((r.stopped for r in results if r.stopped), None),
                   [w for r in results for w in r.warnings], results[0].plan, results[0].options)


class Progress:
    """Handed to the callback after every step. `image` and `losses` are computed only when read.

    step / total: steps done and to do in the whole call (all levels, all stages of a ladder);
    level: the plan's current Level (.index, .size, .steps, .label); level_step: 1..level.steps;
    level_started: True on a level's first step (a loss jump there is the size change, not divergence).
    tile: the level's tile core (th, tw) px, None when untiled; tiles: how many (1 untiled);
    describe(): 'level 3/5: 2048x1366 px, 9 tiles'.
    """

    def __init__(self, step: int, total: int, plan: RunPlan, level: Level, level_step: int, stage: int,
                 stages: int, losses_fn, image_fn):
        self.step, self.total = step, total
        self.plan, self.level, self.level_step = plan, level, level_step
        self.levels = len(plan.levels)
        self.tile, self.tiles = level.tile, level.tiles
        self.stage, self.stages = stage, stages
        self._losses_fn, self._image_fn = losses_fn, image_fn
        self._losses = None
        self.stop_requested = False

    def describe(self) -> str:
        """'level 3/5: 2048x1366 px, 9 tiles' ('2048x1366 px' for a one-level plan)."""
        return _where(self.level, self.levels)

    @property
    def level_started(self) -> bool:
        return self.level_step == 1

    @property
    def losses(self) -> dict:
        if self._losses is None:
            self._losses = self._losses_fn()
        return self._losses

    @property
    def image(self) -> torch.Tensor:
        return self._image_fn()

    def stop(self) -> None:
        """End the run after this step; the current image is returned."""
        self.stop_requested = True


def _where(level: Level, levels: int) -> str:
    """'level 3/5: 2048x1366 px, 9 tiles', without the level number for a one-level plan."""
    return (f"level {level.index + 1}/{levels}: " if levels > 1 else "") + level.tiled_label


class TileProgress:
    """Handed to `callback.tile(t)` (when the callback has a `tile` method) before each tile's forward of a
    tiled step: a 4096 px step takes minutes on a CPU, so progress and Cancel cannot wait for its end.

    step / total, level, stage, stages: as in Progress (`step` is the step being computed); pass_number:
    1 (the gradient-free pass that sums the Grams) or 2 (the gradient pass); tile_index: 1..tiles in this pass;
    describe(): 'level 5/5: 4096x2731 px, 9 tiles: step 3/10, tile 4/9 of pass 2/2'. `stop()` ends the run
    at once: the step being computed is dropped and the image of the last finished step is returned.
    """

    def __init__(self, step: int, total: int, plan: RunPlan, level: Level, level_step: int, stage: int,
                 stages: int, pass_number: int, tile_index: int, tiles: int):
        self.step, self.total, self.plan, self.level, self.level_step = step, total, plan, level, level_step
        self.levels = len(plan.levels)
        self.stage, self.stages = stage, stages
        self.pass_number, self.tile_index, self.tiles = pass_number, tile_index, tiles
        self.stop_requested = False

    def describe(self) -> str:
        return (f"{_where(self.level, self.levels)}: step {self.level_step}/{self.level.steps}, "
                f"tile {self.tile_index}/{self.tiles} of pass {self.pass_number}/2")

    def stop(self) -> None:
        """End the run now; the image of the last finished step is returned."""
        self.stop_requested = True


class TargetProgress:
    """Handed to `callback.tile(t)` before each tile of a target computed tile by tile (the content's
    features or a painting's Grams at a size whose forward does not fit: minutes at 4096 px on a CPU).
    pass_number is 0; size: the image's (H, W); tile_index: 1..tiles; describe():
    'targets at 4096x2731 px: tile 4/12'. Before the first step there is no image to return: `stop()`
    raises KeyboardInterrupt, as Ctrl-C would."""

    pass_number = 0

    def __init__(self, size, tile_index: int, tiles: int):
        self.size, self.tile_index, self.tiles = tuple(size), tile_index, tiles

    def describe(self) -> str:
        return f"targets at {self.size[1]}x{self.size[0]} px: tile {self.tile_index}/{self.tiles}"

    def stop(self) -> None:
        raise KeyboardInterrupt("stopped while the targets were computed (no image yet)")


def target_reporter(hear: Callable | None):
    """The hook for nst_core.tiled_features.reporting_tiles: a TargetProgress to `hear` (a callback's
    `tile` method) per tile, or None without one."""
    if hear is None:
        return None
    return lambda size, index, tiles: hear(TargetProgress(size, index, tiles))


class _StopWithinStep(Exception):
    """Raised out of the objective when a TileProgress asked to stop; caught by the level loop."""


def lbfgs_kind(params) -> str:
    """"torch" (torch.optim.LBFGS) for tensors on the CPU, "vector_free" (nst_core.lbfgs) elsewhere."""
    return "torch" if all(p.device.type == "cpu" for p in params) else "vector_free"


def make_optimizer(name: str, params, lr: float | None, history_size: int = LBFGS_PAIRS):
    if name not in OPTIMIZERS:
        raise OptionError("optimizer", f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else float(lr)
    if not (lr > 0 and math.isfinite(lr)):
        raise OptionError("lr", f"the learning rate must be positive and finite, got {lr}")
    if name == "lbfgs":
        # one iteration per step so callbacks see every step. On a GPU the same update with one host read
        # per step (nst_core.lbfgs); on the CPU torch's own keeps the recorded results bit for bit.
        params = list(params)
        if lbfgs_kind(params) == "torch":
            return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=max(1, int(history_size)),
                                     tolerance_grad=-1, tolerance_change=-1)
        return VectorFreeLBFGS(params, lr=lr, history_size=max(1, int(history_size)), tolerance_grad=-1,
                               tolerance_change=-1)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def initial_image(init: str, size, *, content=None, style=None, init_image=None, seed: int = 0,
                  device=None, noise_scale: float = 1.0) -> torch.Tensor:
    """The starting pixels [1,3,H,W]: seeded white noise, the content, the (first) style or an image.

    Noise is uniform around mid-gray, 0.5 ± noise_scale/2 (1.0 = the full 0..1 range).
    """
    if init not in INITS:
        raise OptionError("init", f"unknown init {init!r}; use one of {', '.join(INITS)}")
    if init == "noise":
        generator = torch.Generator().manual_seed(int(seed))
        noise = torch.rand((1, 3, *size), generator=generator)
        return (0.5 + float(noise_scale) * (noise - 0.5)).to(device)
    if init == "content":               # the plan checked that the target exists (nst_core.plan.decide)
        return content.image_at(size).to(device)
    if init == "style":
        return resize(style.images[0], tuple(size)).to(device)
    if init_image is None:
        raise OptionError("init_image", "init 'image' needs an init image")
    image = to_nchw(init_image)
    if image.shape[0] != 1:
        raise ImageError(f"the init image must be a single image, got a batch of {image.shape[0]}")
    return resize(image, tuple(size)).to(device)


def run(plan: RunPlan, objectives: Sequence[Objective], x0: torch.Tensor, options: RunOptions | None = None, *,
        callback: Callable | None = None, next_level: Callable[[torch.Tensor, Level], torch.Tensor] | None = None,
        to_output: Callable[[torch.Tensor], torch.Tensor] | None = None,
        stage: int = 0, stages: int = 1, step_offset: int = 0, total: int | None = None) -> Result:
    """Optimize the pixels from `x0` through every level of `plan` (objectives[i] for plan.levels[i]),
    with the optimizer, learning rate and GPU switches of `options` (default: the defaults).

    `next_level(x, level)` makes the start of a level from the previous level's result (default: resized);
    `to_output` maps pixels to the image shown and returned (colour preservation); `stage`, `stages`,
    `step_offset` and `total` place this run inside a ladder of runs for progress. Returns a Result whose
    image is at the plan's final size, even when the run stopped early; its warnings start with the plan's
    notes.
    """
    options = options if options is not None else RunOptions()
    optimizer, lr = options.optimizer, options.lr
    if len(objectives) != len(plan.levels):
        raise ValueError(f"{len(objectives)} objectives for {len(plan.levels)} plan levels")
    total = plan.steps if total is None else total
    to_output = to_output or (lambda t: t)
    x = x0
    history: list[dict] = []
    notes: list[str] = list(plan.notes)
    stopped = None
    # a plan fitted tightly to its budget counts live tensors: freed ones go back to the system
    tight = x0.device.type == "cpu" and plan.is_tight(optimizer)
    for level, objective in zip(plan.levels, objectives):
        if tuple(x.shape[-2:]) != level.size:
            x = next_level(x, level) if next_level is not None else resize(x.clamp(0, 1), level.size)
        if tight:
            memory.release_freed_memory()          # the previous level's graph and optimizer state
        if level.tile is not None and not isinstance(objective, TiledObjective):
            objective = TiledObjective(objective, tile=level.tile, stem=level.stem)
        elif options.cuda_graphs and graphable(objective, x):
            objective = GraphedObjective(objective)          # one replay per evaluation on a GPU
        x, stopped = _run_level(plan, level, objective, x, optimizer, lr, callback, to_output, stage, stages,
                                step_offset, total, history, notes)
        if getattr(objective, "note", None):
            notes.append(objective.note)
        if stopped is not None:
            break
    if tuple(x.shape[-2:]) != plan.size:
        x = resize(x.clamp(0, 1), plan.size)
    return Result(to_bhwc(to_output(x)), history, stopped, notes, plan, options)


def _run_level(plan, level, objective, x0, optimizer, lr, callback, to_output, stage, stages, step_offset,
               total, history, notes):
    """`level.steps` steps from x0; appends to history/notes; returns (pixels [1,3,H,W], stopped)."""
    records: list[torch.Tensor] = []
    stopped = None
    with torch.inference_mode(False), torch.enable_grad():
        x = x0.detach().clone().requires_grad_(True)
        opt = make_optimizer(optimizer, [x], lr, level.lbfgs_pairs)
        check_every = 1 if x.device.type == "cpu" else 10
        best_x, best_loss = x.detach().clone(), math.inf
        above = 0                                  # checks in a row with the loss far above the best

        where = {"step": step_offset + level.first_step + 1, "level_step": 1}
        tile_hook = getattr(callback, "tile", None)
        if tile_hook is not None and isinstance(objective, TiledObjective) and objective.on_tile is None:
            def on_tile(pass_number: int, index: int, tiles: int) -> None:
                t = TileProgress(where["step"], total, plan, level, where["level_step"], stage, stages,
                                 pass_number, index + 1, tiles)
                tile_hook(t)
                if t.stop_requested:
                    raise _StopWithinStep()
        else:
            on_tile = None

        # the last evaluation's terms: a dict, not an attribute of `closure` (a function naming itself is a
        # reference cycle that keeps this level's optimizer and its L-BFGS pairs alive into the next level)
        evaluated: dict[str, torch.Tensor] = {}

        def closure():
            opt.zero_grad(set_to_none=True)
            if on_tile is None:
                loss, parts = objective(x)
            else:                   # the tiles of this evaluation report; the objective is left as it was
                objective.on_tile = on_tile
                try:
                    loss, parts = objective(x)
                finally:
                    objective.on_tile = None
            loss.backward()
            evaluated.update(parts)
            return loss

        grad_scale = None
        for level_step in range(1, level.steps + 1):
            before = x.detach().clone()
            where.update(step=step_offset + level.first_step + level_step, level_step=level_step)
            try:
                if optimizer == "lbfgs":
                    opt.step(closure)       # one evaluation, then the update: a stop inside it leaves x as is
                else:
                    closure()
            except _StopWithinStep:
                with torch.no_grad():
                    x.copy_(before)
                stopped = "callback"
                break
            if optimizer != "lbfgs":
                if optimizer == "sgd":
                    # plain SGD on the loss divided by its first gradient's mean magnitude, so that the
                    # learning rate is a step in pixel units whatever the weights and the image size
                    if grad_scale is None:
                        grad_scale = x.grad.abs().mean().clamp_min(1e-20)
                    x.grad.div_(grad_scale)
                opt.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
            # the recorded loss is that of `before` (every optimizer evaluates before it updates)
            records.append(torch.stack([evaluated[t].detach().float() for t in objective.term_names]))
            step = step_offset + level.first_step + level_step
            if level_step % check_every == 0 or level_step == level.steps or callback is not None:
                loss = float(records[-1][0])
                above = above + 1 if loss > DIVERGENCE_FACTOR * best_loss else 0
                problem = _problem(loss, best_loss, above, before, optimizer)
                if problem is not None:
                    with torch.no_grad():
                        x.copy_(best_x if best_loss < math.inf else before)
                    records.pop()
                    stopped = problem
                    message = _message(problem, step, level, loss, best_loss, optimizer, lr)
                    notes.append(message)
                    warnings.warn(message, RuntimeWarning, stacklevel=3)
                    break
                if loss < best_loss:
                    best_x, best_loss = before, loss
            if callback is not None:
                record = records[-1]
                progress = Progress(step, total, plan, level, level_step, stage, stages,
                                    lambda r=record: dict(zip(objective.term_names, r.tolist())),
                                    lambda: to_bhwc(to_output(x.detach())))
                callback(progress)
                if progress.stop_requested:
                    stopped = "callback"
                    break
        result = x.detach()
        if not bool(torch.isfinite(result).all()):
            result = best_x
            if stopped is None:
                stopped = "non-finite loss"
                notes.append("the image became non-finite; returning the best finite image")
        if optimizer == "lbfgs":
            result = result.clamp(0, 1)
    if records:
        first = step_offset + level.first_step + 1
        for i, values in enumerate(torch.stack(records).tolist()):
            history.append({"step": first + i, "stage": stage, "level": level.index,
                            **dict(zip(objective.term_names, values))})
    return result, stopped


def _problem(loss: float, best: float, above: int, pixels: torch.Tensor, optimizer: str) -> str | None:
    if not math.isfinite(loss):
        return "non-finite loss"
    if above >= (LBFGS_PATIENCE if optimizer == "lbfgs" else 1):
        return "diverged"
    if optimizer != "lbfgs" and best < math.inf and loss > best:
        saturated = ((pixels <= 0) | (pixels >= 1)).float().mean().item()
        if saturated > SATURATED_SHARE:
            return "diverged"
    return None


def _message(problem, step, level, loss, best, optimizer, lr) -> str:
    rate = DEFAULT_LR[optimizer] if lr is None else lr
    if problem == "non-finite loss":
        what = f"the loss became non-finite at step {step}"
    else:
        what = (f"the run diverged at step {step} (loss {loss:.3g}, best {best:.3g} at {level.label}; "
                "the image is blowing up or saturating)")
    return (f"{what} ({optimizer}, lr={rate:g}); returning the best image found. Lower the learning rate "
            "or the weights.")


__all__ = ["DIVERGENCE_FACTOR", "Progress", "Result", "TargetProgress", "TileProgress", "initial_image",
           "make_optimizer", "run", "target_reporter"]
