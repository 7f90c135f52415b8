"""The runner knows nothing of style transfer: no module in nodes/headless/ imports nst_core
(or reaches into the pack above it), and the whole package imports without nst_core."""
import ast
import pathlib

HEADLESS = pathlib.Path(__file__).resolve().parents[2] / "nodes" / "headless"


def _imports(path: pathlib.Path) -> list:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_no_module_imports_the_engine_or_the_pack_above():
    modules = sorted(HEADLESS.glob("*.py"))
    assert {m.stem for m in modules} >= {"format", "graph", "validation", "cache", "executor", "core_nodes",
                                        "runtime", "progress", "cli"}
    for module in modules:
        for level, name in _imports(module):
            assert not (level == 0 and name.split(".")[0] == "nst_core"), f"{module.name} imports {name}"
            assert level <= 1, f"{module.name} imports from {'.' * level}{name}, outside nodes/headless"
            assert not (level == 0 and name.startswith("comfyui_nst")), f"{module.name} imports {name}"


def test_every_module_imports_without_nst_core(run_headless_alone):
    done = run_headless_alone("""
        for module in sorted(folder.glob("*.py")):
            if module.stem != "__init__":
                importlib.import_module("headless_alone." + module.stem)
        assert "nst_core" not in sys.modules
        print("imported", len(list(folder.glob("*.py"))))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported")
