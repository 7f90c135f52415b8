"""The text a workflow's nodes show (PreviewAny, reports): collected after a run and saved
as numbered .txt files in the output folder, the way SaveImage saves pictures."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from .files import save_image_path, write_new_file
from .graph import node_label, node_title

__all__ = ["TextOutput", "collect_texts", "save_texts"]


@dataclass
class TextOutput:
    node_id: str
    label: str                  # "12 (PreviewAny 'Report')"
    text: str
    path: Optional[str] = None  # the .txt file once saved


def collect_texts(result: Any) -> list:
    """The strings in the `text` ui lists of the nodes that ran (output nodes, and nodes that show their
    report on themselves), in run order. A text that several nodes show (a report also wired to a Preview
    Any) is listed once, under the last node that showed it."""
    texts = []
    for nid, ui in result.outputs.items():
        items = ui.get("text") if isinstance(ui, dict) else None
        if not isinstance(items, (list, tuple)):
            continue
        label = node_label(nid, result.prompt.get(nid, {}))
        texts += [TextOutput(nid, label, item) for item in items if isinstance(item, str) and item]
    return [item for i, item in enumerate(texts) if all(later.text != item.text for later in texts[i + 1:])]


def _file_prefix(result: Any, nid: str) -> str:
    """A safe file name prefix from the node's title (else its class): 'Report', 'Loss_curves'."""
    node = result.prompt.get(nid, {})
    name = node_title(node) or node.get("class_type") or f"node_{nid}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or f"node_{nid}"


def save_texts(result: Any, texts: list, output_dir: str) -> None:
    """Write each text as <title>_NNNNN_.txt (UTF-8) in `output_dir`; sets TextOutput.path."""
    for item in texts:
        folder, prefix, counter, _ = save_image_path(_file_prefix(result, item.node_id), output_dir)
        data = item.text.encode("utf-8")
        item.path, _ = write_new_file(folder, lambda n: f"{prefix}_{n:05}_.txt", lambda fh: fh.write(data),
                                      first=counter)
