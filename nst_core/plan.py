"""The run plan: which sizes a run optimizes at and how many steps each gets, decided once, as a value.

A plan is a list of levels from coarse to fine; its steps add up exactly to the steps asked for. A plain
run is a one-level plan. The loop runs a plan; progress totals, previews, reports and loss plots read it.

Coarse-to-fine (`plan_run(..., coarse_to_fine=True)`): the coarse levels are cheap (a step at half the side
costs about a quarter) and settle the large-scale structure that is slow to emerge at full size, so the
final level starts close to a good optimum and needs few of its expensive steps. Levels halve the side
while the coarsest long side stays >= COARSEST_LONG_SIDE; the steps are shared out in the proportions
LEVEL_SHARES (coarsest, each level in between, final). Measured at 512 px (README, "Speed"): the
reference's 500-step loss is reached ~6x sooner than with plain full-size L-BFGS steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ImageError
from .settings import OPTIONS

COARSEST_LONG_SIDE = 128
# ... and while its short side stays >= this: every VGG layer down to pool5 still has a pixel there
COARSEST_SHORT_SIDE = 32
# Relative step shares: the coarsest level, each level in between, the final level. Normalized so that
# the levels' steps add up to the steps asked for (a 3-level plan of 300 steps: 122 + 81 + 97).
LEVEL_SHARES = (0.5, 1 / 3, 0.4)
# Below this many steps the plan is one level: after each upsampling L-BFGS needs some steps to rebuild
# its curvature history, which a tiny budget cannot pay for. Measured at 256 px: with 100 steps
# coarse-to-fine reached the plain loop's loss 2.3x sooner; with 40, it ended at a higher loss.
MIN_PYRAMID_STEPS = 100


@dataclass(frozen=True)
class Level:
    """One size of a plan: `steps` optimizer steps at `size` (H, W), after `first_step` earlier steps."""

    index: int
    size: tuple[int, int]
    steps: int
    first_step: int

    @property
    def label(self) -> str:
        """'256x170 px' (width x height)."""
        return f"{self.size[1]}x{self.size[0]} px"

    @property
    def last_step(self) -> int:
        return self.first_step + self.steps


@dataclass(frozen=True)
class RunPlan:
    """The levels of a run, coarse to fine; the last level's size is the output's."""

    levels: tuple[Level, ...]

    @property
    def steps(self) -> int:
        return sum(level.steps for level in self.levels)

    @property
    def size(self) -> tuple[int, int]:
        return self.levels[-1].size

    def __len__(self) -> int:
        return len(self.levels)

    def describe(self) -> str:
        """'128x85 px x 167, 256x170 px x 133' (or '256x170 px x 300' for one level)."""
        return ", ".join(f"{level.label} x {level.steps}" for level in self.levels)

    def cost(self) -> float:
        """The plan's cost in final-size steps (a step's cost ~ its pixel count)."""
        final = self.size[0] * self.size[1]
        return sum(level.steps * level.size[0] * level.size[1] / final for level in self.levels)


def make_plan(sizes, steps) -> RunPlan:
    """A plan from explicit sizes ((H, W) each, coarse to fine) and steps (one int per level)."""
    sizes = [_size(s) for s in sizes]
    steps = [int(n) for n in steps]
    if not sizes:
        raise ValueError("a plan needs at least one size")
    if len(steps) != len(sizes):
        raise ValueError(f"{len(steps)} step counts given for {len(sizes)} sizes")
    if any(n < 1 for n in steps):
        raise ValueError(f"every level needs at least 1 step, got {steps}")
    levels, first = [], 0
    for index, (size, n) in enumerate(zip(sizes, steps)):
        levels.append(Level(index, size, n, first))
        first += n
    return RunPlan(tuple(levels))


def level_sizes(size) -> list[tuple[int, int]]:
    """Sizes from coarse to fine, halving the side while the coarsest long side stays >= COARSEST_LONG_SIDE
    and its short side >= COARSEST_SHORT_SIDE."""
    h, w = _size(size)
    count = 1
    while max(h, w) / 2 ** count >= COARSEST_LONG_SIDE and min(h, w) / 2 ** count >= COARSEST_SHORT_SIDE:
        count += 1
    sizes = []
    for i in reversed(range(count)):
        candidate = (max(1, round(h / 2 ** i)), max(1, round(w / 2 ** i)))
        if not sizes or candidate != sizes[-1]:
            sizes.append(candidate)
    return sizes


def share_steps(steps: int, count: int) -> list[int]:
    """`steps` shared out over `count` levels in the proportions LEVEL_SHARES, adding up exactly
    (largest remainders; every level gets at least one step)."""
    if count == 1:
        return [steps]
    shares = [LEVEL_SHARES[0]] + [LEVEL_SHARES[1]] * (count - 2) + [LEVEL_SHARES[2]]
    total = sum(shares)
    exact = [steps * s / total for s in shares]
    counts = [max(1, int(e)) for e in exact]
    order = sorted(range(count), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    i = 0
    while sum(counts) < steps:
        counts[order[i % count]] += 1
        i += 1
    while sum(counts) > steps:                       # only when max(1, ...) lifted a tiny level
        j = max(range(count), key=lambda k: counts[k])
        counts[j] -= 1
    return counts


def plan_run(size, steps: int, coarse_to_fine: bool = False) -> RunPlan:
    """The plan of a run of `steps` steps ending at `size` ((H, W) or one int for a square).

    One level unless `coarse_to_fine`, the long side is at least 2 x COARSEST_LONG_SIDE and `steps` is at
    least MIN_PYRAMID_STEPS.
    """
    steps = OPTIONS["steps"].check(steps)
    size = _size(size)
    sizes = level_sizes(size) if coarse_to_fine and steps >= MIN_PYRAMID_STEPS else [size]
    return make_plan(sizes, share_steps(steps, len(sizes)))


def _size(size) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ImageError(f"size must be positive, got {size}")
    return h, w


__all__ = ["COARSEST_LONG_SIDE", "COARSEST_SHORT_SIDE", "LEVEL_SHARES", "MIN_PYRAMID_STEPS", "Level", "RunPlan", "level_sizes",
           "make_plan", "plan_run", "share_steps"]
