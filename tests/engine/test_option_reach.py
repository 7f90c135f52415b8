"""Every engine option (settings.OPTIONS) is reachable from nst-stylize and from the video CLI, or is listed
with its reason in nst_core.cli_options.ENGINE_ONLY; a value given on either command line arrives in the run
(the network options in load_vgg, the others in the run's RunOptions)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import nst_core
from nst_core import cli, cli_options
from nst_core.cli_options import ENGINE_ONLY, FLAGS, NETWORK
from nst_core.settings import OPTIONS, Option
from nst_core.video import cli as video_cli

PARSERS = {"nst-stylize": cli.build_parser, "video": video_cli.build_parser}


def unreached(build) -> list[str]:
    """The options of settings.OPTIONS that the parser `build` makes has no flag for and ENGINE_ONLY does
    not list."""
    dests = {action.dest for action in build()._actions}
    return [name for name in OPTIONS if name not in dests and name not in ENGINE_ONLY]


@pytest.mark.parametrize("name", PARSERS)
def test_every_option_has_a_flag_or_a_reason(name):
    assert unreached(PARSERS[name]) == []
    assert set(ENGINE_ONLY) <= set(OPTIONS), "ENGINE_ONLY lists options that no longer exist"
    assert all(len(reason) > 20 for reason in ENGINE_ONLY.values())


@pytest.mark.parametrize("name", PARSERS)
def test_an_option_added_without_a_flag_is_caught(name, monkeypatch):
    """A new option that nobody gave a flag, a --help group or a reason stops the command line from being
    built, with a message naming it."""
    monkeypatch.setitem(OPTIONS, "dummy_option", Option("dummy_option", 1, int, "a test's option", min=0, max=9))
    with pytest.raises(KeyError, match="dummy_option"):
        unreached(PARSERS[name])


@pytest.mark.parametrize("name", PARSERS)
def test_flags_take_default_choices_and_help_from_settings(name):
    parser = PARSERS[name]()
    for option in OPTIONS.values():
        if option.name in ENGINE_ONLY:
            continue
        action = next(a for a in parser._actions if FLAGS[option.name] in a.option_strings)
        assert action.dest == option.name and action.default == option.default, option.name
        if option.choices:
            assert tuple(action.choices) == option.choices, option.name
        assert option.help in action.help.replace("%%", "%"), option.name


@pytest.mark.parametrize("name", PARSERS)
def test_help_lists_every_flag_with_its_default_once(name):
    parser = PARSERS[name]()
    text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"{action.option_strings} has no help"
        said = action.help.count("(default:") + action.help.count("by default") + ("required" in action.help)
        assert said == 1 or action.required, action.help
    assert "(default: None)" not in text
    coarse = next(a for a in parser._actions if "--no-coarse-to-fine" in a.option_strings)
    assert "by default coarse-to-fine is on" in coarse.help.lower()


def other_value(option: Option):
    """A valid value of `option` other than its default (as command-line text, and as the engine holds it)."""
    if option.kind is bool:
        return None, not option.default
    if option.choices is not None:
        value = next(c for c in option.choices if c != option.default)
        return value, value
    if option.default is None:
        value = option.kind((option.min + option.max) / 2)
    else:
        value = option.default + 1 if option.max is None or option.default + 1 <= option.max else option.default - 1
    return str(value), option.kind(value)


def changed_argv(names) -> tuple[list[str], dict]:
    """Command-line arguments setting every option of `names` to another value, and the values expected."""
    argv, expected = [], {}
    for name in names:
        text, value = other_value(OPTIONS[name])
        argv += [FLAGS[name]] if text is None else [FLAGS[name], text]
        expected[name] = value
    return argv, expected


@pytest.fixture
def recorded(monkeypatch):
    """load_vgg's keywords and the run's keywords, recorded; no network is loaded and nothing runs."""
    seen = {}

    def load_vgg(*args, **kwargs):
        seen["network"] = kwargs
        return SimpleNamespace(device=torch.device("cpu"))

    def stylize(content, styles, **kwargs):
        seen["run"] = kwargs
        return SimpleNamespace(image=torch.zeros(1, 8, 8, 3), history=[{}], stopped=None, warnings=[])

    def stylize_frames(frames, styles, **kwargs):
        seen["run"] = kwargs
        return SimpleNamespace(image=torch.zeros(len(frames), 8, 8, 3), chunks=[], warnings=[])

    monkeypatch.setattr(nst_core.loader, "load_vgg", load_vgg)
    monkeypatch.setattr(nst_core.api, "stylize", stylize)
    monkeypatch.setattr(video_cli, "stylize_frames", stylize_frames)
    return seen


def _arrived(seen: dict, expected: dict) -> None:
    options = seen["run"]["options"]
    for name, value in expected.items():
        got = seen["network"][NETWORK[name]] if name in NETWORK else getattr(options, name)
        assert got == value, f"{FLAGS[name]}: {got!r} reached the run, not {value!r}"


def test_nst_stylize_flags_reach_the_run(recorded, tmp_path, capsys):
    argv, expected = changed_argv(cli_options.transfer_options())
    assert cli.main([*argv, "--quiet", "-o", str(tmp_path / "out.png")]) == 0, capsys.readouterr().err
    _arrived(recorded, expected)
    assert set(expected) == set(OPTIONS) - set(ENGINE_ONLY)


def test_video_flags_reach_the_run(recorded, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(2):
        nst_core.to_pil(torch.full((1, 8, 8, 3), t / 2)).save(frames / f"f{t}.png")
    argv, expected = changed_argv(cli_options.transfer_options())
    code = video_cli.main([str(frames), "-o", str(tmp_path / "out"), *argv, "--temporal-weight", "0",
                           "--chunk-frames", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    _arrived(recorded, expected)
    assert recorded["run"]["temporal_weight"] == 0 and recorded["run"]["chunk_frames"] == 2
    assert set(expected) == set(OPTIONS) - set(ENGINE_ONLY)
