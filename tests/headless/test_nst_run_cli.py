"""`nst-run`: overrides, exit codes, messages, progress output, files and texts listed."""
import json
import os
import pathlib
import runpy
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image

from comfyui_nst.nodes.headless import cli
from conftest import load_toy_nodes

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"


_toys = load_toy_nodes


toys = _toys()


@pytest.fixture
def work(toy_workdir):
    return toy_workdir


def _run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _files(root):
    return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*") if p.is_file())


def test_runs_ui_workflow_and_lists_written_files(work, capsys):
    code, out, err = _run([FIXTURES / "invert_ui.json"], capsys)
    assert code == 0, err
    assert out.splitlines() == [os.path.join("output", "harness_invert_00001_.png")]
    assert "1 cached" not in err and "3 node(s) run" in err
    assert (work / "output" / "harness_invert_00001_.png").is_file()


def test_set_by_title_and_by_id_with_json_values(work, capsys):
    code, out, err = _run([FIXTURES / "ui_features.json", "--set", "Sum.b=10", "--set", "Save Image.filename_prefix=x/y",
                           "--set", "1.seed=7", "--set", "14.label=42", "-q"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == os.path.join("output", "x", "y_00001_.png")
    assert ("ToyShow", 10) in toys.CALLS  # 0 + 10 (title "Sum")
    assert ("ToyNoise", 16, 12, 7) in toys.CALLS
    code, out, err = _run([FIXTURES / "ui_features.json", "--set", "14.label=42", "--print-api"], capsys)
    api = json.loads(out)
    assert api["14"]["inputs"]["label"] == 42 and api["3"]["inputs"]["amount"] == 0.25
    assert not (work / "output" / "x" / "y_00002_.png").exists()


@pytest.mark.parametrize("arg, message", [
    ("Nobody.b=1", "no node with id or title 'Nobody'"),
    ("Sum.c=1", "has no input 'c'; inputs: a, b"),
    ("ToyShow.value=1", "matches several nodes (13, 15)"),
    ("Sum=1", "expected NODE.INPUT=VALUE"),
])
def test_bad_overrides(work, capsys, arg, message):
    code, out, err = _run([FIXTURES / "ui_features.json", "--set", arg], capsys)
    assert code == 1 and message in err and not (work / "output").exists()


def test_validation_errors_listed_per_node_and_input(work, capsys):
    # every output (7, 13, 15, 16) fails: nothing runs, exit 1, all problems listed
    code, out, err = _run([FIXTURES / "ui_features.json", "--set", "Sum.b=5000", "--set", "1.width=0",
                           "--set", "Blend A.mode=xor", "--set", "14.noise_seed=-1"], capsys)
    assert code == 1
    assert "workflow validation failed (4 problems)" in err
    assert "node 12 (ToyAdd 'Sum'), input 'b': value 5000 is bigger than the maximum 1000" in err
    assert "node 1 (ToyNoise), input 'width': value 0 is smaller than the minimum 1" in err
    assert "node 3 (ToyBlend 'Blend A'), input 'mode': value 'xor' is not one of ['add', 'mul']" in err
    assert "node 14 (ToySeedByName), input 'noise_seed': value -1 is smaller than the minimum 0" in err
    assert "nothing was run" in err and "skipped" not in err
    assert toys.CALLS == [] and not (work / "output").exists() and out == ""


def test_outputs_failing_validation_are_skipped_the_rest_runs_exit_3(work, capsys):
    # Sum (12) only feeds output 13; outputs 7 (SaveImage), 15 and 16 are valid and run
    code, out, err = _run([FIXTURES / "ui_features.json", "--set", "Sum.b=5000", "-q"], capsys)
    assert code == cli.EXIT_SKIPPED == 3, err
    assert out.splitlines()[:2] == [os.path.join("output", "toy", "blend_00001_.png"),
                                    os.path.join("output", "ToyShow_00001_.txt")]
    assert "== node 15 (ToyShow): output/ToyShow_00001_.txt ==\n99\n" in out  # the skipped 13 shows nothing
    assert (work / "output" / "ToyShow_00001_.txt").read_text() == "99"
    assert (work / "output" / "toy" / "blend_00001_.png").is_file()
    assert not any(call[0] == "ToyAdd" for call in toys.CALLS) and ("ToyShow", 99) in toys.CALLS
    assert toys.CALLS.count(("ToyNoise", 16, 12, 42)) == 1  # shared by outputs 7 and 16: run once
    assert "workflow validation failed (1 problem):" in err
    assert "node 12 (ToyAdd 'Sum'), input 'b': value 5000 is bigger than the maximum 1000" in err
    # the problems are told before the run (a node failing later cannot hide them) and summed up after it
    before_run = err[:err.index("done in")]
    assert "node 12 (ToyAdd 'Sum'), input 'b'" in before_run
    assert "skipping output node 13 (ToyShow), which failed validation; running the other outputs." in before_run
    assert "skipped output node 13 (ToyShow), which failed validation; the other outputs ran." in err
    assert err.index("done in") < err.index("skipped output node 13")
    assert "nothing was run" not in err
    code, out, err = _run([FIXTURES / "ui_features.json", "--set", "Sum.b=5000", "--validate"], capsys)
    assert code == 1 and "node 12 (ToyAdd 'Sum'), input 'b'" in err  # --validate stays strict
    code, out, err = _run([FIXTURES / "ui_features.json", "-q"], capsys)
    assert code == 0 and "skipped" not in err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "3 ran, but some outputs failed validation and were skipped" in " ".join(capsys.readouterr().out.split())


def test_missing_image_and_traversal_fail_cleanly(work, capsys):
    api = json.loads((FIXTURES / "invert_api.json").read_text())
    api["1"]["inputs"]["image"] = "missing.png"
    (work / "wf.json").write_text(json.dumps(api))
    code, out, err = _run(["wf.json"], capsys)
    assert code == 1 and "input 'image': Invalid image file: missing.png" in err
    before = _files(work.parent)
    for override in ("Save Image.filename_prefix=../../evil", "Save Image.filename_prefix=/tmp/evil",
                     "Load Image.image=../../etc/passwd"):
        code, out, err = _run([FIXTURES / "invert_api.json", "--set", override], capsys)
        assert code == 1 and "folder" in err, err
    assert _files(work.parent) == before


def test_execution_error_names_the_node(work, capsys):
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": 3}},
         "2": {"class_type": "ToyFail", "inputs": {"value": ["1", 0]}, "_meta": {"title": "Breaker"}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}}}
    (work / "wf.json").write_text(json.dumps({"prompt": g}))
    code, out, err = _run(["wf.json"], capsys)
    assert code == 1 and "node 2 (ToyFail 'Breaker') failed: ValueError: cannot handle 3" in err
    assert "Traceback" not in err
    code, out, err = _run(["wf.json", "-v"], capsys)
    assert code == 1 and "Traceback" in err


def test_unreadable_workflows(work, capsys):
    (work / "bad.json").write_text("[1, 2]")
    assert _run(["bad.json"], capsys)[0] == 1
    code, out, err = _run(["nothere.json"], capsys)
    assert code == 1 and "not found" in err
    code, out, err = _run([], capsys)
    assert code == 2 and "workflow file is required" in err


def test_device_sets_environment_and_list_nodes(work, capsys, monkeypatch):
    monkeypatch.delenv("NST_DEVICE", raising=False)
    code, out, err = _run(["--device", "cpu", "--list-nodes"], capsys)
    assert code == 0 and os.environ["NST_DEVICE"] == "cpu"
    assert 'SaveImage "Save Image" (output): (images, filename_prefix) -> -' in out
    assert "ToyBlend \"Toy Blend\": (image, mode, amount, [mask]) -> IMAGE" in out


def test_cli_progress_shows_on_stderr(work, capsys):
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": 1}},
         "2": {"class_type": "ToySteps", "inputs": {"value": ["1", 0], "steps": 20}, "_meta": {"title": "Opt"}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}}}
    (work / "wf.json").write_text(json.dumps(g))
    code, out, err = _run(["wf.json"], capsys)
    assert code == 0 and err.count("2 Opt: ") == 11, err  # not a terminal: one line every 10 %
    assert out.splitlines()[0] == os.path.join("output", "ToyShow_00001_.txt")
    code, out, err = _run(["wf.json", "-q"], capsys)
    assert code == 0 and "2 Opt" not in err


def test_python_dash_m_entry_point_with_the_real_registry(tmp_path, monkeypatch, capsys):
    # No toy patching: the registry is the pack's NODES plus the core stand-ins;
    # run through nodes/__main__.py as `python -m comfyui_nst.nodes` does (in-process: no second torch import).
    g = {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 1, "color": 255}},
         "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
         "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "core"}}}
    (tmp_path / "wf.json").write_text(json.dumps(g))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["nst-run", "wf.json", "--output-dir", "out"])
    sys.modules.pop("comfyui_nst.nodes.__main__", None)
    with pytest.raises(SystemExit) as info:
        runpy.run_module("comfyui_nst.nodes", run_name="__main__")
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    assert out.split() == [os.path.join("out", "core_00001_.png")]
    assert np.asarray(Image.open(tmp_path / "out" / "core_00001_.png"))[0, 0].tolist() == [255, 255, 0]


def test_validate_names_a_node_whose_python_module_is_missing(monkeypatch, capsys):
    """The clip template's NST Stylize Frames declares OpenCV (REQUIRES); without it --validate says which
    nodes need it and what to install, instead of calling the workflow valid."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "cv2" else real(name, *a, **k))
    clip = pathlib.Path(__file__).parents[2] / "workflows" / "nst_stylize_a_short_clip.json"
    code, out, err = _run(["--validate", clip], capsys)
    assert code == 1 and out == ""
    assert "(NST_StylizeFrames 'Temporally consistent'): needs the Python module 'cv2', which is not installed: " \
           "pip install" in err
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert _run(["--validate", clip], capsys)[0] == 0


# ---------------------------------------------------------------- texts, previews, help, errors

def _preview_and_text_graph():
    return {"1": {"class_type": "LoadImage", "inputs": {"image": "harness_test.png"}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
            "3": {"class_type": "ToyInt", "inputs": {"value": 7}},
            "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}, "_meta": {"title": "Report: final"}}}


def test_texts_printed_and_saved_previews_not_left_in_the_system_temp(work, capsys, monkeypatch):
    system_temp = work / "system_temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    (work / "wf.json").write_text(json.dumps(_preview_and_text_graph()))
    code, out, err = _run(["wf.json", "-q"], capsys)
    assert code == 0, err
    txt = os.path.join("output", "Report_final_00001_.txt")
    assert out == f"{txt}\n\n== node 4 (PreviewAny 'Report: final'): {txt} ==\n7\n"
    assert (work / "output" / "Report_final_00001_.txt").read_text(encoding="utf-8") == "7"
    assert "1 preview image(s) were not kept (--save-previews keeps them)" in err
    assert list(system_temp.iterdir()) == []          # the run's temp folder is gone
    assert _files(work / "output") == ["Report_final_00001_.txt"]
    code, out, err = _run(["wf.json", "-q", "--save-previews"], capsys)
    assert code == 0, err
    previews = [f for f in _files(work / "output") if f.endswith(".png")]
    assert len(previews) == 1 and f"preview: {os.path.join('output', previews[0])}" in err
    assert os.path.join("output", "Report_final_00002_.txt") in out.splitlines()
    assert list(system_temp.iterdir()) == []


def test_help_says_where_outputs_go_and_every_option_has_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "printed on stdout" in text and "saved as <node title>_NNNNN_.txt in the output folder" in text
    for action in cli._parser()._actions:
        assert action.help, action.option_strings or action.dest
        assert action.help.count("default") <= 1, action.help
    assert "--save-previews" in text and "--temp-dir" in text


def test_unexpected_errors_are_a_message_not_a_traceback(work, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(cli.Executor, "check", broken)
    (work / "wf.json").write_text(json.dumps(_preview_and_text_graph()))
    code, out, err = _run(["wf.json"], capsys)
    assert code == 1 and "unexpected error: RuntimeError: something inside broke" in err and "--verbose" in err
    assert "Traceback" not in err
    code, out, err = _run(["wf.json", "--verbose"], capsys)
    assert code == 1 and "Traceback" in err


def test_ctrl_c_exits_130_with_a_message(work, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.Executor, "run", interrupted)
    (work / "wf.json").write_text(json.dumps(_preview_and_text_graph()))
    code, out, err = _run(["wf.json"], capsys)
    assert code == 130 and "nst-run: interrupted" in err and "Traceback" not in err
