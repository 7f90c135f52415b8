"""A console progress bar for engine runs (tqdm), for Python callers and the command line.

    result = nst_core.stylize(content, style, callback=nst_core.console_progress())

The bar names the level of a coarse-to-fine run ("level 2/3: 256x170 px": the loss jump there is the
size change) and the tile a tiled step is on ("step 3/10: tile 4/9 of pass 2/2"). Ctrl-C is left to the
caller.
"""

from __future__ import annotations

import sys
from typing import Callable

from tqdm import tqdm


class ConsoleProgress:
    """Callable engine callback drawing one tqdm bar on stderr; `close()` ends the bar (also at the run's
    last step). `every`: refresh the loss shown every N steps (reading it syncs a GPU); `then(p)`: called
    after each step and before each tile of a tiled step (the CLI stops the run there on Ctrl-C);
    `step`/`total`: where the run got to. Not on a terminal the bar redraws every 5 s, not every 0.1 s."""

    def __init__(self, desc: str = "", every: int = 5, file=None, disable: bool = False,
                 then: Callable | None = None):
        self.desc, self.every, self.disable, self.then = desc, max(1, int(every)), disable, then
        self.file = file or sys.stderr
        self.bar: tqdm | None = None
        self.step = self.total = 0

    def _label(self, p) -> str:
        parts = [self.desc] if self.desc else []
        if p.stages > 1:
            parts.append(f"stage {p.stage + 1}/{p.stages}")
        where = getattr(p.level, "tiled_label", p.level.label)     # '2048x1366 px, 9 tiles' when tiled
        if p.levels > 1:
            parts.append(f"level {p.level.index + 1}/{p.levels}: {where}")
        elif not parts or getattr(p.level, "tile", None) is not None:
            parts.append(where)
        return ", ".join(parts)

    def _open(self, p) -> None:
        if self.bar is None:
            interactive = getattr(self.file, "isatty", lambda: False)()
            self.bar = tqdm(total=p.total, file=self.file, disable=self.disable, unit="step",
                            dynamic_ncols=True, leave=True, mininterval=0.1 if interactive else 5.0)
            self.bar.set_description(self._label(p), refresh=False)

    def __call__(self, p) -> None:
        self.step, self.total = p.step, p.total
        self._open(p)
        if p.level_started:
            self.bar.set_description(self._label(p), refresh=False)
        if p.step % self.every == 0 or p.step == p.total:
            self.bar.set_postfix_str(f"loss {p.losses['total']:.4g}", refresh=False)
        self.bar.update(p.step - self.bar.n)
        if self.then is not None:
            self.then(p)
        if p.step >= p.total:
            self.close()

    def tile(self, t) -> None:
        """Before each tile of a tiled step (nst_core.loop.TileProgress): the bar says which tile of
        which pass, so a step of minutes still moves; `then` sees it too (it may stop the run there)."""
        if t.pass_number == 0:      # the targets, before the first step: no bar yet, one line per tile
            if not self.disable:
                print(t.describe(), file=self.file, flush=True)
        else:
            self._open(t)
            self.bar.set_postfix_str(f"step {t.level_step}/{t.level.steps}: tile {t.tile_index}/{t.tiles} of "
                                     f"pass {t.pass_number}/2", refresh=False)
            self.bar.update(0)
        if self.then is not None:
            self.then(t)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def console_progress(desc: str = "", **options) -> ConsoleProgress:
    """A tqdm progress callback for `stylize`, `optimize` and the reconstructions."""
    return ConsoleProgress(desc, **options)
