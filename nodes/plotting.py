"""Loss curves as an image (matplotlib) and the matching text report.

matplotlib instead of hand-drawn lines: the editor shows a node's image output at ~300 px wide, where
the PIL drawing's 11 px labels and 2 px lines (one colour per optimizer, no line styles) could not be
told apart; here every curve gets a colour and a line style, labels are 14 px at 640 px, and the log
axis gets proper decade ticks. The figure is drawn with the Agg canvas directly (no pyplot, no global
state), so it is safe in ComfyUI's worker threads.

``plot_losses(history, level_marks=...)``: log10(loss) against the step, one curve per loss term (total,
content, style, tv, look), or, for a ladder (history entries with several ``stage`` values), one total-loss curve
per stage; ``level_marks`` [(step, label)] draws a dashed line where a plan's level starts (the size
change explains the loss jump there).
"""

from __future__ import annotations

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from nst_core.look import LookTerm
from nst_core.objective import TERMS as OBJECTIVE_TERMS

# the engine's terms, and the look term's (a level larger than look_size: nst_core.look)
TERMS = (*OBJECTIVE_TERMS, LookTerm.name)
TERM_STYLES = {"total": ("#1e1e1e", "-"), "content": ("#1f77b4", "--"), "style": ("#d62728", "-."),
               "tv": ("#2ca02c", ":"), LookTerm.name: ("#9467bd", (0, (5, 1, 1, 1)))}
CYCLE = [("#1f77b4", "-"), ("#ff7f0e", "--"), ("#2ca02c", "-."), ("#d62728", ":"), ("#9467bd", "-"),
         ("#8c564b", "--"), ("#e377c2", "-."), ("#7f7f7f", ":"), ("#bcbd22", "-"), ("#17becf", "--")]
FONT_SIZE = 14


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _series(history, group_labels=None) -> list[tuple[str, tuple[str, str], list[float], list[float]]]:
    """(label, (colour, line style), steps, values) for every curve worth drawing."""
    stages = sorted({h.get("stage") for h in history if h.get("stage") is not None})
    out = []
    if len(stages) > 1:   # a ladder: one total-loss curve per stage
        for i, stage in enumerate(stages):
            pts = [(float(h.get("step", k)), _positive(h.get("total")))
                   for k, h in enumerate(history) if h.get("stage") == stage]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                label = str(group_labels[i]) if group_labels and i < len(group_labels) else f"stage {stage}"
                out.append((label, CYCLE[i % len(CYCLE)], [x for x, _ in pts], [y for _, y in pts]))
        return out
    for term in TERMS:
        pts = [(float(h.get("step", k + 1)), _positive(h.get(term))) for k, h in enumerate(history)]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            out.append((term, TERM_STYLES[term], [x for x, _ in pts], [y for _, y in pts]))
    return out


def plot_losses(history, *, title: str = "", group_labels=None, level_marks=None,
                size: tuple[int, int] = (640, 400)) -> Image.Image:
    """An RGB PIL image of the loss curves (log-scale y) of an engine ``Result.history``."""
    dpi = 100
    figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    history = list(history or [])
    series = _series(history, group_labels)
    if title:
        axes.set_title(title, fontsize=FONT_SIZE)
    if not series:
        axes.text(0.5, 0.5, "no loss history" if not history else "no positive finite loss to plot",
                  ha="center", va="center", transform=axes.transAxes, fontsize=FONT_SIZE)
        axes.set_xticks([])
        axes.set_yticks([])
    else:
        for label, (colour, style), xs, ys in series:
            axes.plot(xs, ys, linestyle=style, color=colour, linewidth=2.2, label=label,
                      marker="o" if len(xs) == 1 else None)
        axes.set_yscale("log")
        for step, label in level_marks or ():
            axes.axvline(step, color="#888888", linestyle=(0, (4, 3)), linewidth=1.2)
            axes.annotate(label, (step, 0), xycoords=("data", "axes fraction"), xytext=(4, 4),
                          textcoords="offset points", ha="left", va="bottom", fontsize=FONT_SIZE - 3,
                          color="#555555", backgroundcolor="white")
        axes.set_xlabel("step", fontsize=FONT_SIZE)
        axes.set_ylabel("loss", fontsize=FONT_SIZE)
        axes.tick_params(labelsize=FONT_SIZE - 2)
        axes.grid(True, which="major", color="#dddddd")
        axes.legend(fontsize=FONT_SIZE - 2, loc="best", framealpha=0.9)
    figure.tight_layout()
    canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")


def _fmt(value) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def format_report(history, *, header: str = "", stopped=None, warnings=(), seconds: float | None = None,
                  group_labels=None, rows: int = 10) -> str:
    """A plain-text summary of a run: settings header, final losses, a few rows of the history."""
    history = list(history or [])
    lines = [header.rstrip()] if header else []
    if seconds is not None:
        lines.append(f"time: {seconds:.1f} s")
    if stopped:
        lines.append(f"stopped early: {stopped}")
    for w in warnings or ():
        lines.append(f"warning: {w}")
    if not history:
        lines.append("no optimizer step was recorded")
        return "\n".join(lines)
    terms = [t for t in TERMS if t == "total" or any(_positive(h.get(t)) for h in history)]
    stages = sorted({h.get("stage") for h in history if h.get("stage") is not None})
    groups = [(None, history)] if len(stages) <= 1 else [
        (s, [h for h in history if h.get("stage") == s]) for s in stages]
    for i, (stage, items) in enumerate(groups):
        if stage is not None:
            name = group_labels[i] if group_labels and i < len(group_labels) else f"stage {stage}"
            lines.append(f"-- {name}")
        last = items[-1]
        lines.append("final: step {} | ".format(last.get("step", len(items)))
                     + " | ".join(f"{t} {_fmt(last.get(t))}" for t in terms))
        if stage is None and rows > 0:
            pick = sorted({round(k * (len(items) - 1) / max(rows - 1, 1)) for k in range(rows)})
            lines.append("step  " + "  ".join(f"{t:>10}" for t in terms))
            for k in pick:
                h = items[k]
                lines.append(f"{str(h.get('step', k + 1)):>4}  "
                             + "  ".join(f"{_fmt(h.get(t)):>10}" for t in terms))
    return "\n".join(lines)
