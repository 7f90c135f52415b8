"""Every option defined once (nst_core.settings): the README's table is made from it, checks name the option."""

import pathlib

import pytest

import nst_core
from nst_core.settings import OPTIONS, OptionError, markdown_table

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_options_table_is_the_engines():
    assert markdown_table() in README.read_text(encoding="utf-8")


@pytest.mark.parametrize("name, value", [("steps", 0), ("steps", 10_001), ("steps", 2.5), ("style_weight", "nan"),
                                         ("content_weight", float("inf")), ("tv_weight", -1), ("seed", 2 ** 64),
                                         ("optimizer", "newton"), ("coarse_to_fine", "yes"), ("lr", 0.0)])
def test_a_refused_value_names_its_option(name, value):
    with pytest.raises(OptionError, match=f"^{name}: ") as info:
        OPTIONS[name].check(value)
    assert info.value.option == name


def test_values_are_converted_once():
    assert OPTIONS["style_weight"].check(" 5e6 ") == 5e6 and OPTIONS["steps"].check(300.0) == 300
    assert OPTIONS["lr"].check(None) is None and OPTIONS["seed"].check("7") == 7
    assert nst_core.DEFAULTS["style_weight"] == OPTIONS["style_weight"].default
