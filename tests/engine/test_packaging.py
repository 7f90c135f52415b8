"""Every Python package of the project is installed by a non-editable `pip install .` (pyproject lists it)."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for init in ROOT.glob("nst_core/**/__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    for init in ROOT.glob("nodes/**/__init__.py"):
        found.add(".".join(("comfyui_nst",) + init.parent.relative_to(ROOT).parts))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    dirs = config["package-dir"]
    for package in listed - {"nst_core", "comfyui_nst"}:
        parent = package.rsplit(".", 1)[0]
        assert package in dirs or not package.startswith("comfyui_nst.") or parent in dirs, package
