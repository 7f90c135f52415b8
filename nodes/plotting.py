"""Loss curves as an image, drawn with PIL only (no matplotlib).

``plot_losses(history)`` draws log10(loss) against the step, one curve per loss term (total,
content, style, tv), or, for a ladder (history entries carrying a ``stage``), one total-loss curve
per stage.  ``format_report(...)`` is the matching text summary.
"""

from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

TERMS = ("total", "content", "style", "tv")
COLORS = {
    "total": (30, 30, 30),
    "content": (31, 119, 180),
    "style": (214, 39, 40),
    "tv": (44, 160, 44),
}
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
BACKGROUND = (255, 255, 255)
AXIS = (60, 60, 60)
GRID = (225, 225, 225)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)   # Pillow >= 10.1 (scalable when FreeType is there)
    except TypeError:
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _series(history, group_labels=None) -> list[tuple[str, tuple[int, int, int], list[tuple[float, float]]]]:
    """(label, colour, [(step, value), ...]) for every curve worth drawing."""
    stages = sorted({h.get("stage") for h in history if h.get("stage") is not None})
    out = []
    if len(stages) > 1:   # a ladder: one total-loss curve per stage
        for i, stage in enumerate(stages):
            pts = [(float(h.get("step", k)), _positive(h.get("total")))
                   for k, h in enumerate(history) if h.get("stage") == stage]
            pts = [(x, y) for x, y in pts if y is not None]
            if not pts:
                continue
            if group_labels and i < len(group_labels):
                label = str(group_labels[i])
            else:
                label = f"stage {stage}"
            out.append((label, PALETTE[i % len(PALETTE)], pts))
        return out
    for term in TERMS:
        pts = [(float(h.get("step", k)), _positive(h.get(term))) for k, h in enumerate(history)]
        pts = [(x, y) for x, y in pts if y is not None]
        if not pts:
            continue
        out.append((term, COLORS[term], pts))
    return out


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / max(target, 1)
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _decade_label(e: int) -> str:
    return "1" if e == 0 else f"1e{e}"


def plot_losses(history, *, title: str = "", group_labels=None,
                size: tuple[int, int] = (640, 400)) -> Image.Image:
    """An RGB PIL image of the loss curves (log-scale y) of an engine ``Result.history``."""
    width, height = int(size[0]), int(size[1])
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    font = _font(12)
    small = _font(11)
    history = list(history or [])
    series = _series(history, group_labels)

    left, right, top, bottom = 62, 16, 30, 40
    x0, y0, x1, y1 = left, top, width - right, height - bottom
    if title:
        tw, _ = _text_size(draw, title, font)
        draw.text(((width - tw) // 2, 8), title, fill=AXIS, font=font)
    if not series:
        msg = "no loss history" if not history else "no positive finite loss to plot"
        tw, th = _text_size(draw, msg, font)
        draw.rectangle([x0, y0, x1, y1], outline=AXIS)
        draw.text(((width - tw) // 2, (height - th) // 2), msg, fill=AXIS, font=font)
        return img

    xs = [x for _, _, pts in series for x, _ in pts]
    ys = [math.log10(y) for _, _, pts in series for _, y in pts]
    xmin, xmax = min(xs), max(xs)
    if xmax <= xmin:
        xmin, xmax = xmin - 1, xmax + 1
    emin, emax = math.floor(min(ys)), math.ceil(max(ys))
    if emax <= emin:
        emin, emax = emin - 1, emax + 1

    def px(x: float) -> float:
        return x0 + (x - xmin) / (xmax - xmin) * (x1 - x0)

    def py(log_y: float) -> float:
        return y1 - (log_y - emin) / (emax - emin) * (y1 - y0)

    # y grid: one line per decade (labels thinned out when there are many)
    decades = emax - emin
    every = max(1, math.ceil(decades / 8))
    for e in range(emin, emax + 1):
        y = py(e)
        draw.line([(x0, y), (x1, y)], fill=GRID)
        if (e - emin) % every == 0:
            label = _decade_label(e)
            tw, th = _text_size(draw, label, small)
            draw.text((x0 - 6 - tw, y - th / 2 - 1), label, fill=AXIS, font=small)
    # x grid
    step = _nice_step(xmax - xmin)
    tick = math.ceil(xmin / step) * step
    while tick <= xmax + 1e-9:
        x = px(tick)
        draw.line([(x, y0), (x, y1)], fill=GRID)
        label = f"{tick:g}"
        tw, _ = _text_size(draw, label, small)
        draw.text((x - tw / 2, y1 + 5), label, fill=AXIS, font=small)
        tick += step
    draw.rectangle([x0, y0, x1, y1], outline=AXIS)
    xl = "step"
    tw, _ = _text_size(draw, xl, font)
    draw.text(((x0 + x1 - tw) / 2, height - 18), xl, fill=AXIS, font=font)
    draw.text((8, 8), "loss", fill=AXIS, font=font)

    # curves
    for _label, colour, pts in series:
        coords = [(px(x), py(math.log10(y))) for x, y in pts]
        if len(coords) == 1:
            cx, cy = coords[0]
            draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=colour)
        else:
            draw.line(coords, fill=colour, width=2)

    # legend (top right)
    rows = [(label, colour) for label, colour, _ in series]
    lw = max(_text_size(draw, label, small)[0] for label, _ in rows) + 34
    lh = 16 * len(rows) + 6
    lx, ly = x1 - lw - 6, y0 + 6
    draw.rectangle([lx, ly, lx + lw, ly + lh], fill=BACKGROUND, outline=GRID)
    for i, (label, colour) in enumerate(rows):
        yy = ly + 6 + 16 * i
        draw.line([(lx + 6, yy + 6), (lx + 24, yy + 6)], fill=colour, width=3)
        draw.text((lx + 28, yy), label, fill=AXIS, font=small)
    return img


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
