"""The runner knows nothing of style transfer: no module in nodes/headless/ imports nst_core
(or reaches into the pack above it), and the whole package imports without nst_core."""
import ast
import pathlib
import subprocess
import sys
import textwrap

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


def test_every_module_imports_without_nst_core():
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, importlib.util, pathlib, sys

        class NoEngine(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "nst_core":
                    raise ImportError("nst_core is blocked in this test")
                return None

        sys.meta_path.insert(0, NoEngine())
        folder = pathlib.Path({str(HEADLESS)!r})
        spec = importlib.util.spec_from_file_location("headless_alone", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        package = importlib.util.module_from_spec(spec)
        sys.modules["headless_alone"] = package
        spec.loader.exec_module(package)
        for module in sorted(folder.glob("*.py")):
            if module.stem != "__init__":
                importlib.import_module("headless_alone." + module.stem)
        assert "nst_core" not in sys.modules
        print("imported", len(list(folder.glob("*.py"))))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported")
