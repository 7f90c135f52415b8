"""What ComfyUI and the Comfy Registry read from the pack: V3 registration only, the host's torch left alone,
the published files without tests and CI, and the registry fields."""

import ast
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _names_defined(path: pathlib.Path) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    names |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    names |= {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
              for alias in node.names}
    return names


def test_comfyui_finds_only_the_v3_entry_point():
    """ComfyUI calls comfy_entrypoint only when the module has no NODE_CLASS_MAPPINGS (nodes.py, V3 branch)."""
    top = _names_defined(ROOT / "__init__.py")
    assert "comfy_entrypoint" in top and "NODE_CLASS_MAPPINGS" not in top
    assert "NODE_CLASS_MAPPINGS" not in _names_defined(ROOT / "nodes" / "__init__.py")
    assert (ROOT / top_web_directory()).is_dir()


def top_web_directory() -> str:
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    (value,) = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "WEB_DIRECTORY" for t in node.targets)]
    return value


def test_the_registry_install_leaves_the_hosts_torch_alone():
    deps = [d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in PYPROJECT["project"]["dependencies"]]
    assert "torch" not in deps and "torchvision" not in deps
    assert any(d.startswith("torch") for d in PYPROJECT["project"]["optional-dependencies"]["torch"])


def test_published_files_leave_out_tests_and_ci():
    ignored = {line.strip() for line in (ROOT / ".comfyignore").read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"tests/", ".ci/"} <= ignored


def test_registry_fields():
    comfy = PYPROJECT["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] and comfy["Icon"].startswith("https://")
    assert (ROOT / comfy["Icon"].split("/main/", 1)[1]).is_file()          # the icon is a file of the repository
    assert comfy["requires-comfyui"].startswith(">=")          # the lowest version with the V3 API
    classifiers = PYPROJECT["project"]["classifiers"]
    assert "Operating System :: OS Independent" in classifiers
    assert all(c.startswith(("Operating System ::", "Environment :: GPU ::")) for c in classifiers)
