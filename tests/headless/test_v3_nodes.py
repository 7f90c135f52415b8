"""The runner runs V3-shaped nodes (a NodeSpec, classmethods execute / validate_inputs / fingerprint_inputs,
a NodeResult carrying ui) through its own small interface, still importing nothing of nst_core; the pack's
nodes are those very classes; and, where a real ComfyUI checkout is at hand, ComfyUI's V3 API sees the
same inputs, widget order and outputs the runner does."""
import json
import os
import pathlib
import subprocess
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADLESS = ROOT / "nodes" / "headless"
# a ComfyUI checkout and its Python (the comfyhost harness makes both: ../shared/comfyhost/README.md)
COMFYUI_DIR = pathlib.Path(os.environ.get("COMFYUI_DIR", pathlib.Path.home() / "comfyhost" / "ComfyUI"))
COMFYUI_PYTHON = pathlib.Path(os.environ.get("COMFYUI_PYTHON", COMFYUI_DIR.parent / "venv" / "bin" / "python"))


def test_the_runner_runs_v3_shaped_nodes_without_the_engine(run_headless_alone):
    done = run_headless_alone("""
        from headless_alone.core_nodes import CORE_NODE_CLASS_MAPPINGS
        from headless_alone.executor import Executor
        from headless_alone.node_spec import Input, NodeResult, NodeSpec, Output
        from headless_alone.text_outputs import collect_texts
        from headless_alone.validation import ValidationError

        fingerprints = []

        class ToyRepeat:
            needs = {}

            @classmethod
            def spec(cls):
                return NodeSpec("ToyRepeat", "Toy Repeat", "toy", "Repeats a text.",
                                inputs=(Input("text", "STRING", {"default": "ab"}),
                                        Input("times", "INT", {"default": 2, "min": 1, "max": 5})),
                                outputs=(Output("text", "STRING", "the text, repeated"),), requires=cls.needs)

            @classmethod
            def execute(cls, text, times):
                return NodeResult(text * times, ui={"text": [f"repeated {times} times"]})

            @classmethod
            def validate_inputs(cls, text):
                return True if text != "bad" else "[Toy Repeat] input 'text': not that one"

            @classmethod
            def fingerprint_inputs(cls, text, times):
                fingerprints.append((text, times))
                return text

        def graph(text="ab", times=3):
            return {"1": {"class_type": "ToyRepeat", "inputs": {"text": text, "times": times}},
                    "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}

        ex = Executor({**CORE_NODE_CLASS_MAPPINGS, "ToyRepeat": ToyRepeat})
        result = ex.run(graph())
        assert result.outputs["1"] == {"text": ["repeated 3 times"]}, result.outputs   # ui of a non-output node
        assert result.outputs["2"] == {"text": ["ababab"]}, result.outputs              # its value downstream
        assert [t.text for t in collect_texts(result)] == ["repeated 3 times", "ababab"]
        assert fingerprints == [("ab", 3)]
        assert ex.run(graph()).cached == ["1", "2"]                  # fingerprint unchanged: served from cache

        problems = {}
        for bad in (graph(times=9), graph(text="bad")):
            try:
                ex.validate(bad)
            except ValidationError as exc:
                problems.update({p.type: p.message for p in exc.problems})
        assert "not that one" in problems.pop("custom_validation_failed")
        assert problems.pop("value_bigger_than_max") and not problems, problems

        ToyRepeat.needs = {"no_such_module_h2": "pip install no-such-module"}
        try:
            ex.validate(graph())
        except ValidationError as exc:
            (problem,) = exc.problems
            assert problem.type == "missing_dependency" and "pip install no-such-module" in problem.message
        else:
            raise AssertionError("a node whose module is missing validated")
        assert "nst_core" not in sys.modules
        print("ok")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_runner_runs_the_packs_own_classes():
    from comfyui_nst.nodes import NODES
    from comfyui_nst.nodes.headless.cli import build_registry

    classes, names = build_registry()
    for node in NODES:
        spec = node.spec()
        view = classes[spec.node_id]
        assert view.NODE is node                       # the one definition, not a copy of it
        assert view.INPUT_TYPES() == spec.input_types() and names[spec.node_id] == spec.display_name
        assert not hasattr(node, "INPUT_TYPES") and not hasattr(node, "FUNCTION")   # no V1 on the node itself


def _comfyui_v1_info() -> dict:
    """ComfyUI's own view (GET_NODE_INFO_V1 of the V3 classes comfy_entrypoint returns), loaded as ComfyUI
    loads a pack: by file location, with the ComfyUI checkout on sys.path."""
    script = textwrap.dedent(f"""
        import asyncio, importlib.util, json, sys
        sys.argv = [sys.argv[0], "--cpu"]
        sys.path.insert(0, {str(COMFYUI_DIR)!r})
        import comfy.options
        comfy.options.enable_args_parsing()          # as main.py does: --cpu is read
        import folder_paths, comfy.model_management  # noqa: F401 - what ComfyUI imports before any pack
        from comfy_api.internal import first_real_override
        spec = importlib.util.spec_from_file_location("nst_pack_under_test", {str(ROOT / "__init__.py")!r},
                                                      submodule_search_locations=[{str(ROOT)!r}])
        pack = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = pack
        spec.loader.exec_module(pack)
        assert not hasattr(pack, "NODE_CLASS_MAPPINGS")
        nodes = asyncio.run(pack.comfy_entrypoint().get_node_list())
        info = {{}}
        for cls in nodes:
            v1 = cls.GET_NODE_INFO_V1()
            v1["hooks"] = sorted(name for name in ("validate_inputs", "fingerprint_inputs")
                                 if first_real_override(cls, name) is not None)
            info[v1["name"]] = v1
        print(json.dumps(info, default=str))
    """)
    done = subprocess.run([str(COMFYUI_PYTHON), "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=str(COMFYUI_DIR))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not (COMFYUI_DIR / "comfy_api" / "latest").is_dir() or not COMFYUI_PYTHON.exists(),
                    reason="no ComfyUI checkout (set COMFYUI_DIR / COMFYUI_PYTHON, or run comfyhost setup)")
def test_comfyui_sees_what_the_runner_runs():
    """Same node ids, widget order, types and outputs in both hosts; the pack's own types are typed sockets;
    the V3 hooks are the node's."""
    from comfyui_nst.nodes import NODES
    from comfyui_nst.nodes.headless.node_spec import v1_view

    comfy = _comfyui_v1_info()
    assert list(comfy) == [node.NODE_ID for node in NODES]
    for node in NODES:
        view, info = v1_view(node), comfy[node.NODE_ID]
        ours = view.INPUT_TYPES()
        assert info["input_order"] == {group: list(ours[group]) for group in ours}, node.NODE_ID
        for group in ours:
            for name, (kind, options) in ours[group].items():
                theirs_kind, theirs = info["input"][group][name]
                assert theirs_kind == ("COMBO" if isinstance(kind, list) else kind), (node.NODE_ID, name)
                assert theirs.get("options", kind) == kind and theirs.get("tooltip") == options.get("tooltip")
                for key in ("default", "min", "max", "step", "control_after_generate"):
                    assert theirs.get(key) == options.get(key), (node.NODE_ID, name, key)
        assert tuple(info["output"]) == view.RETURN_TYPES and tuple(info["output_name"]) == view.RETURN_NAMES
        assert (info["display_name"], info["category"]) == (view.SPEC.display_name, view.CATEGORY)
        assert info["hooks"] == sorted(name for name in ("validate_inputs", "fingerprint_inputs")
                                       if name in dir(node))
    assert comfy["NST_Optimize"]["input"]["required"]["vgg"][0] == "NST_VGG"
