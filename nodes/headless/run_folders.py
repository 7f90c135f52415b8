"""Where a fan-out's results land: run_0001/, run_0002/, ... and manifest.json in the output folder.

Only the driver writes here. The output folder is claimed before any work (manifest.json created
exclusively; a folder that already holds a fan-out is refused, so no run's file is overwritten).
Each file is written whole under a temp name and published atomically (files.write_new_file),
and the manifest is rewritten atomically after every finished run, so an interrupted sweep
leaves complete files and a manifest that says which runs finished.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any, Optional

from .files import PARTIAL_PREFIX, inside, write_new_file

__all__ = ["MANIFEST_NAME", "OutputFolderTaken", "RunFolders", "existing_fanout"]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "nst-run fan-out 1"
_RUN_FOLDER = re.compile(r"^run_\d{4,}$")


class OutputFolderTaken(ValueError):
    """The output folder already holds a fan-out (its manifest or run folders)."""


def existing_fanout(output_dir: str) -> Optional[str]:
    """The name of what marks `output_dir` as holding a fan-out already, or None."""
    if not os.path.isdir(output_dir):
        return None
    names = sorted(os.listdir(output_dir))
    if MANIFEST_NAME in names:
        return MANIFEST_NAME
    return next((n for n in names if _RUN_FOLDER.match(n)), None)


class RunFolders:
    """Writes each run's files into its own folder and keeps manifest.json up to date."""

    def __init__(self, output_dir: str, header: dict, runs: list, temp_dir: Optional[str] = None):
        self.output_dir = os.path.abspath(output_dir)
        self.temp_dir = os.path.abspath(temp_dir) if temp_dir else None
        self.manifest = {"format": MANIFEST_FORMAT, **header, "runs": runs}
        self._claim()

    def _claim(self) -> None:
        taken = existing_fanout(self.output_dir)
        if taken:
            raise OutputFolderTaken(f"the output folder {self.output_dir} already holds a fan-out ({taken}); "
                                    "choose another --output-dir (runs are never written over)")
        os.makedirs(self.output_dir, exist_ok=True)
        try:
            fd = os.open(os.path.join(self.output_dir, MANIFEST_NAME), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError as exc:
            raise OutputFolderTaken(f"the output folder {self.output_dir} was just claimed by another fan-out "
                                    f"({MANIFEST_NAME}); choose another --output-dir") from exc
        os.close(fd)
        self.save_manifest()

    def run_entry(self, index: int) -> dict:
        return self.manifest["runs"][index - 1]

    def save_manifest(self) -> None:
        """Replace manifest.json atomically (a reader never sees half of it)."""
        data = (json.dumps(self.manifest, indent=2, default=str) + "\n").encode("utf-8")
        fd, temp = tempfile.mkstemp(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", suffix=".tmp", dir=self.output_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, os.path.join(self.output_dir, MANIFEST_NAME))
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    def write(self, result: Any) -> list:
        """Write a TaskResult's files under <output>/<run name>/ (previews under <temp dir>/<run name>/).

        Returns the paths written. Every name is new: an existing file is never replaced.
        """
        written = []
        for item in result.files:
            base = self.temp_dir if item.kind == "temp" and self.temp_dir else self.output_dir
            root = os.path.join(base, result.name)
            path = os.path.normpath(os.path.join(root, *item.path.split("/")))
            if os.path.isabs(item.path) or not inside(root, path):
                raise ValueError(f"{result.name}: the worker returned a file outside its run folder: {item.path!r}")
            folder, name = os.path.split(path)
            os.makedirs(folder, exist_ok=True)
            data = item.data
            final, _ = write_new_file(folder, lambda n, name=name: name, lambda fh, data=data: fh.write(data),
                                      first=1, max_tries=1)
            written.append(final)
        return written
