"""Inside ComfyUI the nodes report progress and the live preview through V3's progress API
(comfy_api.latest.ComfyAPISync().execution.set_progress), simulated here by stand-in host modules."""

from __future__ import annotations

import sys
import types

from PIL import Image

from comfyui_nst.nodes import host


def test_progress_and_preview_go_through_the_v3_progress_api(monkeypatch):
    calls = []

    class Execution:
        def set_progress(self, value, max_value, node_id=None, preview_image=None, ignore_size_limit=False):
            calls.append((value, max_value, preview_image))

    class ComfyAPISync:
        execution = Execution()

    latest = types.ModuleType("comfy_api.latest")
    latest.ComfyAPISync = ComfyAPISync
    for name, module in {"folder_paths": types.ModuleType("folder_paths"),
                         "comfy": types.ModuleType("comfy"),
                         "comfy.model_management": types.ModuleType("comfy.model_management"),
                         "comfy_api": types.ModuleType("comfy_api"), "comfy_api.latest": latest}.items():
        monkeypatch.setitem(sys.modules, name, module)
    assert host.in_comfyui()
    preview = Image.new("RGB", (8, 8))
    bar = host.ProgressBar(10)
    bar.update(3, preview=preview)
    bar.update(12, total=20)
    assert calls == [(3, 10, preview), (12, 20, None)]
