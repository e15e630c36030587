"""The `ezclip` command line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from ezclip import __version__
from ezclip.cli import COMMANDS, DATA_COMMANDS, HYDRA_APPS, build_parser, main

ARGPARSE_COMMANDS = [[name] for name in COMMANDS] + [["data", name] for name in DATA_COMMANDS]


def test_info_reproduces_the_paper_counts_for_vit_b16(capsys):
    assert main(["info", "--backbone", "ViT-B-16", "--frames", "8"]) == 0
    info = json.loads(capsys.readouterr().out)
    params = info["parameters"]
    assert (params["trainable"], params["prompts"], params["vision_adapters"], params["text_adapters"]) == (
        5_204_736,
        73_728,
        3_550_464,
        1_580_544,
    )
    flops = info["flops_per_view"]
    # docs/design.md §8: ~141 GMACs full for 8 frames of plain ViT-B/16 (+ adapters here), ~96 linear/conv only
    assert 140 < flops["full_gmacs"] < 150
    assert 94 < flops["linear_conv_gmacs"] < 98
    assert flops["full_gflops"] == 2 * flops["full_gmacs"]


def test_info_switches_change_the_answer(capsys):
    main(["info", "--backbone", "ViT-B-32", "--frames", "16", "--tvp", "first", "--no-adapters"])
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["trainable"] == info["parameters"]["prompts"] == 16 * 768


def test_console_script_runs_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "ezclip.cli", "info", "--backbone", "ViT-B-32", "--tvp", "off"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["prompts"] == 0


def test_unknown_backbone_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "ezclip.cli", "info", "--backbone", "ViT-Q-99"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "unknown backbone 'ViT-Q-99'" in result.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"ezclip {__version__}"


@pytest.mark.parametrize("command", [[], *ARGPARSE_COMMANDS], ids=lambda c: " ".join(c) or "ezclip")
def test_help_imports_no_heavy_module(command):
    # `ezclip --help` and `ezclip X --help` import only the chosen command's module, which keeps
    # torch, lightning and open_clip for its run(): help answers without their ~2-5 s import.
    code = (
        "import sys; from ezclip.cli import main\n"
        f"try: main({[*command, '--help']!r})\n"
        "except SystemExit: pass\n"
        "heavy = sorted({'torch', 'lightning', 'open_clip', 'torchvision'} & set(sys.modules))\n"
        "print('HEAVY', heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: ezclip" in result.stdout and "HEAVY []" in result.stdout, result.stdout[-500:]


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action._choices_actions
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield action


@pytest.mark.parametrize("command", ARGPARSE_COMMANDS, ids=" ".join)
def test_every_subcommand_and_option_has_help(command):
    parser, _ = build_parser(command)
    missing = [a.dest for a in _actions(parser) if not a.help and a.dest not in ("help", "command", "data_command")]
    assert not missing, f"ezclip {' '.join(command)}: no help for {missing}"
    assert set(HYDRA_APPS) | set(COMMANDS) | {"data"} == set(parser._subparsers._group_actions[0].choices)


def test_outside_a_clone_the_configs_are_found_through_the_environment_or_refused(monkeypatch, tmp_path):
    from ezclip.runs import config

    real = config.config_dir()
    monkeypatch.setattr(config, "_CLONE", tmp_path)  # as installed from a wheel: no conf/ beside the package
    monkeypatch.delenv("EZCLIP_CONF", raising=False)
    with pytest.raises(FileNotFoundError, match="runs from a clone of its repository.*EZCLIP_CONF"):
        config.config_dir()
    monkeypatch.setenv("EZCLIP_CONF", str(real))
    assert config.config_dir() == real
