"""The ONE adapter between the NST nodes and their host.

Inside ComfyUI it talks to ComfyUI (V3's ``ComfyAPISync().execution.set_progress`` with a preview image,
``comfy.model_management`` for the device and the Cancel button, ``folder_paths`` for the
``models/vgg`` folder).  Outside ComfyUI (tests, the headless executor, plain Python) it does
nothing ComfyUI-specific: progress and interruption go to ``nodes/headless/runtime.py``,
the device comes from ``NST_DEVICE`` (get_device; the engine never reads it) and weight files are
looked up in the folders named by ``NST_VGG_DIR`` (``os.pathsep``-separated).

ComfyUI is detected through ``sys.modules`` (ComfyUI imports ``folder_paths`` before it loads any
pack), never by trying ``import comfy``: an unrelated PyPI package of that name exists.
Nothing here runs at import time except cheap bookkeeping.
"""

from __future__ import annotations

import logging
import os
import sys

import torch

import nst_core

from .headless import runtime

log = logging.getLogger("comfyui_nst")   # fixed name: the pack's __name__ is a file path in ComfyUI

VGG_FOLDER = "vgg"
# the engine's derived files (the dequantized default weights, statistics) inside ComfyUI: beside models/vgg,
# not in it, so they never show up as a weights file to pick
CACHE_FOLDER = "nst_cache"
WEIGHT_EXTENSIONS = (".pth", ".pt", ".safetensors", ".bin")
# derived files an older version of the pack wrote into models/vgg: still not weights to pick
NOT_WEIGHTS_PREFIXES = ("act_means_", nst_core.pretrained.DEFAULT_WEIGHTS_NAME)


def _is_weights_name(name: str) -> bool:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name.lower().endswith(WEIGHT_EXTENSIONS) and not base.startswith(NOT_WEIGHTS_PREFIXES)


PREVIEW_MAX_SIZE = 512


# ----------------------------------------------------------------------------------------------
# detection

def in_comfyui() -> bool:
    """True when running inside a ComfyUI process."""
    return "folder_paths" in sys.modules and "comfy.model_management" in sys.modules


def _comfy(module: str):
    """A ComfyUI module, or None outside ComfyUI (or if it cannot be imported)."""
    if not in_comfyui():
        return None
    try:
        import importlib
        return importlib.import_module(module)
    except Exception:   # noqa: BLE001 - a half-initialised host must not break the node
        return None


# ----------------------------------------------------------------------------------------------
# the process

_owns_process = False           # set by nst-run (own_process); never inside ComfyUI or a library caller


def own_process() -> None:
    """nst-run owns this process: the nodes may tune it (follow_memory_cap)."""
    global _owns_process
    _owns_process = True


def follow_memory_cap(max_memory_gb) -> None:
    """Under a memory cap in a process the pack owns, freed blocks go back to the system so that RSS follows
    the budget: nst-stylize's rule for --max-memory-gb. Without a cap tuning only costs time (+28 % CPU)."""
    if _owns_process and max_memory_gb:
        nst_core.memory.tune_process_allocator()


# ----------------------------------------------------------------------------------------------
# progress, preview, interruption

class ProgressBar:
    """Progress of one node run.  Build it inside the node function (ComfyUI's ProgressBar
    captures its hook when constructed).

    ``update(value, total, preview)``: preview is a PIL image or None.  In ComfyUI it goes to the
    node as a live JPEG preview; the ComfyUI hook also raises when Cancel was pressed.
    """

    def __init__(self, total: int):
        self.total = max(int(total), 1)
        self._execution = self._bar = None
        if not in_comfyui():
            return
        try:        # V3's progress API; comfy.utils.ProgressBar on a host that lacks it
            from comfy_api.latest import ComfyAPISync
            self._execution = ComfyAPISync().execution
        except Exception:   # noqa: BLE001
            try:
                self._bar = _comfy("comfy.utils").ProgressBar(self.total)
            except Exception:   # noqa: BLE001
                self._bar = None

    def update(self, value: int, total: int | None = None, preview=None) -> None:
        if total is not None:
            self.total = max(int(total), 1)
        value = min(int(value), self.total)
        if self._execution is not None:
            self._execution.set_progress(value, self.total, preview_image=preview)
        elif self._bar is not None:
            shot = ("JPEG", preview, PREVIEW_MAX_SIZE) if preview is not None else None
            self._bar.update_absolute(value, self.total, shot)
        elif not in_comfyui():
            runtime.report_progress(value, self.total, preview)


def progress_text(text: str) -> None:
    """Show `text` under the running node (ComfyUI's progress text, e.g. 'level 3/5: 2048x1366 px,
    9 tiles'); nothing outside ComfyUI or on hosts without it."""
    context, server = _comfy("comfy_execution.utils"), _comfy("server")
    try:
        executing = context.get_executing_context() if context is not None else None
        if executing is not None and server is not None:
            server.PromptServer.instance.send_progress_text(text, executing.node_id)
    except Exception:   # noqa: BLE001 - an older host without progress text must not break the node
        pass


def check_interrupted() -> None:
    """Raise the host's interruption exception if the user asked the run to stop."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()
        return
    if not in_comfyui():
        runtime.check_interrupted()


# ----------------------------------------------------------------------------------------------
# device and memory

def get_device():
    """The torch device to compute on: ComfyUI's choice (honours --cpu); outside ComfyUI the environment
    variable NST_DEVICE (nst-run --device and the fan-out workers set it), else the engine's default (cuda
    when available, else cpu). The engine never reads NST_DEVICE: the nodes pass this device to it."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        try:
            return mm.get_torch_device()
        except Exception:   # noqa: BLE001
            pass
    name = os.environ.get("NST_DEVICE")
    return torch.device(name) if name else nst_core.default_device()


def hand_networks_to_host() -> None:
    """After NST Load VGG: inside ComfyUI its node cache alone holds the network, so "Free model and node
    cache" (which resets that cache) frees it; ComfyUI has no unload hook for a pack's own models, and
    wrapping its model manager would touch every pack. Outside ComfyUI the engine keeps its last networks."""
    if in_comfyui():
        nst_core.release_networks()


def soft_empty_cache() -> None:
    mm = _comfy("comfy.model_management")
    if mm is not None:
        try:
            mm.soft_empty_cache()
        except Exception:   # noqa: BLE001
            pass


# ----------------------------------------------------------------------------------------------
# models/vgg

_registered = False


def register_vgg_folder() -> list[str]:
    """Register ``<models_dir>/vgg`` with ComfyUI's folder_paths (merged with an existing entry,
    e.g. from extra_model_paths.yaml) and point the engine's cache at ``<models_dir>/nst_cache``.
    Idempotent; returns the folder list (empty outside ComfyUI)."""
    global _registered
    fp = sys.modules.get("folder_paths")
    if fp is None or not in_comfyui():
        return []
    default_dir = os.path.join(fp.models_dir, VGG_FOLDER)
    if not _registered:
        names = getattr(fp, "folder_names_and_paths", None)
        if names is not None and VGG_FOLDER in names:
            paths, exts = names[VGG_FOLDER]
            paths = list(paths)
            if default_dir not in paths:
                paths.append(default_dir)
            # an entry made by extra_model_paths.yaml has an empty set ("all files"): be explicit
            names[VGG_FOLDER] = (paths, set(exts or ()) | set(WEIGHT_EXTENSIONS))
        elif hasattr(fp, "add_model_folder_path"):
            fp.add_model_folder_path(VGG_FOLDER, default_dir)
            paths, _exts = fp.folder_names_and_paths[VGG_FOLDER]
            fp.folder_names_and_paths[VGG_FOLDER] = (paths, set(WEIGHT_EXTENSIONS))
        elif names is not None:
            names[VGG_FOLDER] = ([default_dir], set(WEIGHT_EXTENSIONS))
        cache = getattr(fp, "filename_list_cache", None)
        if isinstance(cache, dict):
            cache.pop(VGG_FOLDER, None)
        _registered = True
        _set_engine_cache_dir(os.path.join(fp.models_dir, CACHE_FOLDER))
    return vgg_folders()


def _set_engine_cache_dir(path: str) -> None:
    try:
        nst_core.set_cache_dir(path)
    except Exception as exc:   # noqa: BLE001 - a read-only models dir must not stop the pack
        log.warning("[NST] could not use %s as the VGG weights cache: %s", path, exc)


def vgg_folders() -> list[str]:
    """Folders searched for VGG weight files."""
    fp = sys.modules.get("folder_paths") if in_comfyui() else None
    if fp is not None:
        try:
            return list(fp.get_folder_paths(VGG_FOLDER))
        except Exception:   # noqa: BLE001
            return []
    env = os.environ.get("NST_VGG_DIR", "")
    return [p for p in env.split(os.pathsep) if p]


def list_vgg_files() -> list[str]:
    """Weight files (relative names, sorted) in the vgg folders."""
    fp = sys.modules.get("folder_paths") if in_comfyui() else None
    if fp is not None:
        register_vgg_folder()
        try:
            return [f for f in fp.get_filename_list(VGG_FOLDER) if _is_weights_name(f)]
        except Exception:   # noqa: BLE001
            return []
    found: set[str] = set()
    for folder in vgg_folders():
        if not os.path.isdir(folder):
            continue
        for root, _dirs, files in os.walk(folder, followlinks=True):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
                if _is_weights_name(rel):
                    found.add(rel)
    return sorted(found)


def vgg_full_path(name: str) -> str | None:
    """Absolute path of a weight file named as list_vgg_files() names it, or None."""
    fp = sys.modules.get("folder_paths") if in_comfyui() else None
    if fp is not None:
        register_vgg_folder()
        try:
            return fp.get_full_path(VGG_FOLDER, name)
        except Exception:   # noqa: BLE001
            return None
    rel = os.path.relpath(os.path.join("/", name), "/")   # no escaping the folder with ../
    for folder in vgg_folders():
        path = os.path.join(folder, rel)
        if os.path.isfile(path):
            return path
    return None
