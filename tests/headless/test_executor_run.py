"""Executor: what runs, in which order, caching, errors, progress, cancellation, lists."""
import pathlib
import threading

import pytest
import torch

from comfyui_nst.nodes.headless import runtime
from comfyui_nst.nodes.headless.executor import ExecutionError, Executor, RunResult, run_workflow
from comfyui_nst.nodes.headless.runtime import Interrupted
from conftest import load_toy_nodes

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"


_toys = load_toy_nodes


toys = _toys()
CLASSES, NAMES = toys.registry()


@pytest.fixture(autouse=True)
def _reset_calls():
    toys.reset()
    yield


@pytest.fixture
def executor(tmp_path):
    return Executor(CLASSES, input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out"),
                    temp_dir=str(tmp_path / "tmp"), display_names=NAMES)


def _add_graph(a=2, b=3):
    return {"1": {"class_type": "ToyInt", "inputs": {"value": a}},
         "2": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": b}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}},
         "9": {"class_type": "ToyInt", "inputs": {"value": 50}}}  # not needed by any output


def test_runs_only_what_outputs_need_in_dependency_order(executor):
    result = executor.run(_add_graph())
    assert isinstance(result, RunResult)
    assert result.executed == ["1", "2", "3"]
    assert toys.CALLS == [("ToyInt", 2), ("ToyAdd", 2, 3), ("ToyShow", 5)]
    assert result.outputs == {"3": {"text": ["5"]}}


def test_each_node_runs_once_with_two_consumers(executor):
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": 4}},
         "2": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": ["1", 0]}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}},
         "4": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}}}
    result = executor.run(g)
    assert toys.CALLS.count(("ToyInt", 4)) == 1
    assert result.outputs == {"3": {"text": ["4"]}, "4": {"text": ["8"]}}


def test_cache_reused_when_only_downstream_changes(executor):
    executor.run(_add_graph(a=2, b=3))
    toys.reset()
    result = executor.run(_add_graph(a=2, b=10))
    assert result.cached == ["1"] and result.executed == ["2", "3"]
    assert toys.CALLS == [("ToyAdd", 2, 10), ("ToyShow", 12)]
    toys.reset()
    result = executor.run(_add_graph(a=7, b=10))  # upstream change: everything downstream re-runs
    assert result.executed == ["1", "2", "3"]
    toys.reset()
    result = executor.run(_add_graph(a=7, b=10))  # identical graph: all cached, like ComfyUI
    assert result.executed == [] and toys.CALLS == [] and result.outputs == {"3": {"text": ["17"]}}


def test_cache_is_per_executor_and_keyed_by_content_not_id(executor):
    executor.run(_add_graph())
    g = _add_graph()
    g["100"] = g.pop("1")  # same node under another id
    g["2"]["inputs"]["a"] = ["100", 0]
    toys.reset()
    assert executor.run(g).cached == ["100", "2", "3"]
    other = Executor(CLASSES)
    assert other.run(_add_graph()).executed == ["1", "2", "3"]
    executor.clear_cache()
    assert executor.run(_add_graph()).executed == ["1", "2", "3"]


def test_is_changed_nan_always_reruns_and_value_change_reruns(executor):
    g = {"1": {"class_type": "ToyAlwaysChanged", "inputs": {"value": 1}},
         "2": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}}}
    executor.run(g)
    toys.reset()
    result = executor.run(g)
    assert result.executed == ["1", "2"]  # NaN: never cached, nor anything downstream
    g = {"1": {"class_type": "ToyVersioned", "inputs": {"value": 1}},
         "2": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}}}
    try:
        executor.run(g)
        assert executor.run(g).executed == []
        toys.ToyVersioned.VERSION = 5
        result = executor.run(g)
        assert result.executed == ["1", "2"] and result.outputs["2"] == {"text": ["6"]}
    finally:
        toys.ToyVersioned.VERSION = 0


def test_hidden_inputs_and_extra_pnginfo(executor):
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": 3}},
         "7": {"class_type": "ToyHidden", "inputs": {"value": ["1", 0]}}}
    result = executor.run(g, extra_pnginfo={"workflow": {"w": 1}})
    assert toys.CALLS[-1] == ("ToyHidden", 3, ["1", "7"], {"workflow": {"w": 1}}, "7")
    assert result.outputs["7"] == {"unique_id": ["7"]}


def test_nodes_run_under_inference_mode(executor):
    g = {"1": {"class_type": "ToyNoise", "inputs": {"width": 4, "height": 3, "seed": 1}},
         "2": {"class_type": "ToyImageSink", "inputs": {"images": ["1", 0]}}}
    executor.run(g)
    assert toys.CALLS[-1] == ("ToyImageSink", (1, 3, 4, 3), True)
    assert not torch.is_inference_mode_enabled()


def test_node_exception_is_wrapped_with_node_details(executor):
    g = {"1": {"class_type": "ToyInt", "inputs": {"value": 3}},
         "2": {"class_type": "ToyFail", "inputs": {"value": ["1", 0]}, "_meta": {"title": "Breaker"}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}}}
    with pytest.raises(ExecutionError) as info:
        executor.run(g)
    err = info.value
    assert (err.node_id, err.class_type, err.title) == ("2", "ToyFail", "Breaker")
    assert err.exception_type == "ValueError" and err.exception_message == "cannot handle 3"
    assert isinstance(err.__cause__, ValueError)
    assert str(err) == "node 2 (ToyFail 'Breaker') failed: ValueError: cannot handle 3"
    assert err.executed == ["1"] and err.current_inputs == {"value": [3]}
    assert "ToyShow" not in [c[0] for c in toys.CALLS]
    toys.reset()
    g["2"] = {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": 1}}
    assert executor.run(g).cached == ["1"]  # what succeeded before the error stayed cached


def test_bad_return_value_is_a_clear_execution_error(executor):
    g = {"1": {"class_type": "ToyBadReturn", "inputs": {}}, "2": {"class_type": "ToyShow", "inputs": {"value": ["1", 0]}}}
    with pytest.raises(ExecutionError, match=r"must return a tuple"):
        executor.run(g)


def _steps_graph(steps=10):
    return {"1": {"class_type": "ToyInt", "inputs": {"value": 1}},
            "2": {"class_type": "ToySteps", "inputs": {"value": ["1", 0], "steps": steps}},
            "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}}}


def test_progress_sink_gets_node_id_and_values(executor):
    seen = []
    executor.run(_steps_graph(4), progress=lambda *a: seen.append(a))
    assert seen == [("2", i, 4, None) for i in range(1, 5)]
    runtime.report_progress(1, 2)  # outside a run: a no-op
    runtime.check_interrupted()
    assert runtime.current_node_id() is None


def test_cancel_event_before_and_during_a_run(executor):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Interrupted):
        executor.run(_steps_graph(), cancel=cancel)
    assert toys.CALLS == []
    cancel.clear()

    def sink(node_id, value, total, preview):
        if value == 3:
            cancel.set()

    with pytest.raises(Interrupted, match="node 2"):
        executor.run(_steps_graph(), progress=sink, cancel=cancel)
    assert ("ToySteps", 1, 10) not in toys.CALLS
    cancel.clear()
    toys.reset()
    assert executor.run(_steps_graph(), cancel=cancel).executed == ["2", "3"]  # interrupted node not cached


def test_cancel_flag_may_be_a_callable(executor):
    with pytest.raises(Interrupted):
        executor.run(_steps_graph(), cancel=lambda: True)


def test_output_is_list_maps_downstream_and_input_is_list_gets_all(executor):
    g = {"1": {"class_type": "ToyListOut", "inputs": {"count": 3}},
         "2": {"class_type": "ToyAdd", "inputs": {"a": ["1", 0], "b": 10}},
         "3": {"class_type": "ToyShow", "inputs": {"value": ["2", 0]}},
         "4": {"class_type": "ToyListSum", "inputs": {"values": ["2", 0]}},
         "5": {"class_type": "ToyShow", "inputs": {"value": ["4", 0]}}}
    result = executor.run(g)
    assert [c for c in toys.CALLS if c[0] == "ToyAdd"] == [("ToyAdd", i, 10) for i in range(3)]
    assert result.outputs["3"] == {"text": ["10", "11", "12"]}  # ui lists concatenated
    assert ("ToyListSum", [10, 11, 12]) in toys.CALLS
    assert result.outputs["5"] == {"text": ["33"]}


def test_ui_format_workflow_runs_end_to_end(executor, tmp_path):
    result = executor.run(str(FIXTURES / "ui_features.json"))
    assert sorted(result.executed, key=int) == ["1", "3", "7", "12", "13", "14", "15", "16"]
    assert result.outputs["13"] == {"text": ["3"]} and result.outputs["15"] == {"text": ["99"]}
    assert result.files == [str(tmp_path / "out" / "toy" / "blend_00001_.png")]
    assert ("ToyBlend", "mul", 0.25, False) in toys.CALLS  # primitive value, muted mask dropped


def test_run_workflow_convenience(tmp_path):
    result = run_workflow(_add_graph(), CLASSES, output_dir=str(tmp_path))
    assert result.outputs == {"3": {"text": ["5"]}}
