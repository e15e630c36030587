"""The `ezclip` command: one entry point, one subcommand per job.

Only the chosen subcommand's module is imported, so `ezclip --help` and `ezclip X --help` stay
fast: command modules import torch and friends inside their `run`, not at the top.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ezclip import __version__

# Hydra apps: everything after the subcommand goes to Hydra untouched (overrides, -m, --help, --cfg).
HYDRA_APPS = {
    "train": ("ezclip.train", "train EZ-CLIP, then test the last epoch (Hydra overrides; -m for sweeps)"),
    "eval": ("ezclip.eval", "test a checkpoint (ckpt=PATH, any format) or a configured model (Hydra overrides)"),
}
# argparse subcommands: name -> (module with add_arguments(parser) and run(args), one-line help)
COMMANDS = {
    "predict": ("ezclip.predict", "classify your own videos against your own class names"),
    "info": ("ezclip.info", "parameter and FLOP counts (and views/s) of a model, as JSON (Table 7)"),
    "report": ("ezclip.report", "a paper table from runs' results.json, beside the paper's numbers"),
    "viz": ("ezclip.viz", "a run's figures: curves, confusion, embedding map, attention maps"),
    "demo": ("ezclip.demo.run", "the whole pipeline on SynthMotion with the nano-CLIP, on the CPU"),
    "pretrain-nano": ("ezclip.demo.nano", "pretrain (or reuse) the demo's nano-CLIP backbone"),
}
DATA_COMMANDS = {
    "synth": ("ezclip.demo.synth", "render the SynthMotion dataset (the demo's data)"),
    "convert": ("ezclip.prep.convert", "official UCF101/HMDB51/Kinetics/SSv2 annotations -> project lists"),
    "fetch-splits": ("ezclip.prep.splits", "download and verify the pinned public split/label/description files"),
    "describe": ("ezclip.prep.describe", "class descriptions from an OpenAI-compatible chat endpoint"),
    "flatten": ("ezclip.prep.flatten", "link a release's videos into one flat folder (ViFi HMDB/UCF lists)"),
    "summary": ("ezclip.prep.summary", "videos, classes and missing files per split, without decoding"),
    "check": ("ezclip.prep.check", "decode one clip of every video; report (and exclude) unreadable ones"),
    "prepare": ("ezclip.prep.prepare", "re-encode videos once (small, a keyframe every 16 frames) for fast reads"),
}


LOG_HANDLER = "ezclip-cli"


def _first_positional(args: list[str]) -> str | None:
    return next((a for a in args if not a.startswith("-")), None)


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    """The parser, with the arguments of the subcommand named in `argv` only (its module imported)."""
    parser = argparse.ArgumentParser(prog="ezclip", description="EZ-CLIP experiment framework")
    parser.add_argument("-V", "--version", action="version", version=f"ezclip {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in HYDRA_APPS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    chosen = _first_positional(argv)
    handlers: dict[str, object] = {}

    def add(group, name: str, module_name: str, help_text: str, key: str, selected: bool) -> None:
        sub = group.add_parser(name, help=help_text, description=help_text)
        if selected:
            module = importlib.import_module(module_name)
            sub.description = module.__doc__ or help_text
            sub.formatter_class = argparse.RawDescriptionHelpFormatter
            module.add_arguments(sub)
            handlers[key] = module.run

    for name, (module_name, help_text) in COMMANDS.items():
        add(commands, name, module_name, help_text, name, chosen == name)
    data = commands.add_parser("data", help="dataset tools (synth, convert, fetch-splits, describe, ...)")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    data_chosen = _first_positional(argv[argv.index("data") + 1 :]) if chosen == "data" else None
    for name, (module_name, help_text) in DATA_COMMANDS.items():
        add(data_commands, name, module_name, help_text, f"data {name}", data_chosen == name)
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HYDRA_APPS:
        # Become `python -m ezclip.train ...`: Lightning's DDP launcher starts the other ranks by
        # re-running __main__ with the same arguments, which must then be the Hydra app itself.
        os.execv(sys.executable, [sys.executable, "-m", HYDRA_APPS[argv[0]][0], *argv[1:]])

    parser, handlers = build_parser(argv)
    args = parser.parse_args(argv)
    # Our own messages only: Lightning and Hydra print theirs through their own handlers. One
    # handler, on the current stderr, however often main() runs in a process.
    logger = logging.getLogger("ezclip")
    for old in [h for h in logger.handlers if h.get_name() == LOG_HANDLER]:
        logger.removeHandler(old)
    handler = logging.StreamHandler()
    handler.set_name(LOG_HANDLER)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    command = args.command if args.command != "data" else f"data {args.data_command}"
    try:
        return handlers[command](args)
    except (ValueError, OSError) as error:
        # A user's mistake (bad name, path, shape) or a failed file/network operation: one line, no traceback.
        print(f"ezclip {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
