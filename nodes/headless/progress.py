"""The one progress sink of the runner: a tqdm bar per node, for `nst-run` (and any script).

On a terminal tqdm redraws the bar in place; on anything else (a log file, CI) one line in tqdm's
format is written every 10 %, so logs stay readable. Works with runtime.ProgressSink's shape:
sink(node_id, value, total, preview).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Optional, TextIO

from tqdm import tqdm

__all__ = ["NodeProgress"]


class NodeProgress:
    """Progress sink showing one bar per running node, labelled with the node id and title."""

    def __init__(self, stream: Optional[TextIO] = None, labels: Optional[Mapping[str, str]] = None,
                 tty: Optional[bool] = None):
        self.stream = stream or sys.stderr
        self.labels = dict(labels or {})
        isatty = getattr(self.stream, "isatty", None)
        self.tty = (bool(isatty()) if callable(isatty) else False) if tty is None else tty
        self.node: Optional[str] = None
        self._bar: Optional[tqdm] = None
        self._decile = -1
        self._started = 0.0

    def __call__(self, node_id: Optional[str], value: int, total: int, preview: Any = None) -> None:
        if total <= 0:
            return
        if node_id != self.node:
            self.close()
            self.node, self._decile, self._started = node_id, -1, time.monotonic()
        value = max(0, min(int(value), int(total)))
        label = self.labels.get(node_id, f"node {node_id}")
        if self.tty:
            self._draw(label, value, total)
        else:
            self._log(label, value, total)
        if value >= total:
            self.close()

    def _draw(self, label: str, value: int, total: int) -> None:
        if self._bar is None or self._bar.total != total:
            if self._bar is not None:
                self._bar.close()
            self._bar = tqdm(total=total, desc=label, file=self.stream, leave=True, dynamic_ncols=True,
                             mininterval=0.1)
        self._bar.update(value - self._bar.n)

    def _log(self, label: str, value: int, total: int) -> None:
        decile = value * 10 // total
        if decile <= self._decile:
            return
        self._decile = decile
        line = tqdm.format_meter(value, total, time.monotonic() - self._started, ncols=80, prefix=label,
                                 ascii=True)
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the current bar (a node finished, failed or was interrupted)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.node = None
