"""The one progress sink (tqdm): bars on a terminal, one line per 10 % elsewhere."""
import io

from comfyui_nst.nodes.headless.progress import NodeProgress


def test_without_a_terminal_one_line_every_ten_percent():
    stream = io.StringIO()
    bar = NodeProgress(stream, labels={"2": "2 Optimize"}, tty=False)
    for i in range(1, 101):
        bar("2", i, 100, None)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in stream.getvalue()
    assert lines[0].startswith("2 Optimize:   1%") and "1/100" in lines[0]
    assert lines[-1].startswith("2 Optimize: 100%|###") and "| 100/100 [" in lines[-1]


def test_on_a_terminal_tqdm_redraws_one_bar_per_node():
    stream = io.StringIO()
    bar = NodeProgress(stream, labels={"7": "7 Opt"}, tty=True)
    for i in range(1, 5):
        bar("7", i, 4, None)
    for i in range(1, 3):
        bar("8", i, 10, None)   # another node: a new bar, the first one stays
    bar.close()
    text = stream.getvalue()
    assert "\r" in text and "7 Opt: 100%" in text and "4/4" in text
    assert "node 8:  20%" in text and "2/10" in text
    assert text.index("4/4") < text.index("node 8")


def test_a_zero_total_is_ignored_and_values_are_clamped():
    stream = io.StringIO()
    bar = NodeProgress(stream, tty=False)
    bar("1", 5, 0, None)
    bar("1", 15, 10, None)
    assert stream.getvalue().splitlines() == [line for line in stream.getvalue().splitlines() if "10/10" in line]
    assert len(stream.getvalue().splitlines()) == 1
