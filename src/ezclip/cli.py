"""The `ezclip` command: one entry point, one subcommand per job.

ezclip train [hydra overrides]        ezclip eval ckpt=PATH [hydra overrides]
ezclip predict VIDEO ... --labels ...  ezclip demo
ezclip data synth --out DIR            ezclip pretrain-nano
ezclip info --backbone ViT-B-16
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Hydra apps: everything after the subcommand goes to Hydra untouched (overrides, -m, --help).
HYDRA_APPS = {"train": "ezclip.train", "eval": "ezclip.eval"}
# argparse subcommands: (module with add_arguments/run, help)
COMMANDS = {
    "predict": ("ezclip.predict", "classify videos against class names"),
    "demo": ("ezclip.demo", "the whole pipeline on SynthMotion with the nano-CLIP (CPU, ~10 min)"),
    "pretrain-nano": ("ezclip.nano", "pretrain (or reuse) the demo's nano-CLIP backbone"),
    "info": ("ezclip.info", "parameter and FLOP counts as JSON (Table 7 columns)"),
    "report": ("ezclip.report", "a paper table from runs' results.json, beside the paper's numbers"),
}
DATA_COMMANDS = {
    "synth": ("ezclip.data.synth", "render the SynthMotion dataset"),
    "convert": ("ezclip.data.datasets.convert", "official UCF101/HMDB51/Kinetics/SSv2 annotations -> project lists"),
    "fetch-splits": ("ezclip.data.splits", "download and verify the pinned public split/label/description files"),
    "describe": ("ezclip.data.descriptions", "class descriptions from an OpenAI-compatible chat endpoint"),
    "flatten": ("ezclip.data.flatten", "link a release's videos into one flat folder (ViFi HMDB/UCF lists)"),
    "summary": ("ezclip.data.summary", "videos, classes and missing files per split, without decoding"),
    "check": ("ezclip.data.check", "decode one clip of every video; report (and exclude) unreadable ones"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HYDRA_APPS:
        # Become `python -m ezclip.train ...`: Lightning's DDP launcher starts the other ranks by
        # re-running __main__ with the same arguments, which must then be the Hydra app itself.
        os.execv(sys.executable, [sys.executable, "-m", HYDRA_APPS[argv[0]], *argv[1:]])

    parser = argparse.ArgumentParser(prog="ezclip", description="EZ-CLIP experiment framework")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in HYDRA_APPS:
        commands.add_parser(name, help=f"Hydra app: ezclip {name} --help", add_help=False)
    handlers = {}
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(
            commands.add_parser(
                name, help=help_text, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
            )
        )
        handlers[name] = module.run
    data = commands.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    for name, (module_name, help_text) in DATA_COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(data.add_parser(name, help=help_text))
        handlers[f"data {name}"] = module.run

    args = parser.parse_args(argv)
    # Our own messages only: Lightning and Hydra print theirs through their own handlers.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("ezclip").addHandler(handler)
    logging.getLogger("ezclip").setLevel(logging.INFO)
    command = args.command if args.command != "data" else f"data {args.data_command}"
    try:
        return handlers[command](args)
    except (ValueError, FileNotFoundError) as error:
        # A user's mistake (bad name, path, shape): one line, no traceback.
        print(f"ezclip {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
