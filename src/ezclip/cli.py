"""The `ezclip` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ezclip", description="EZ-CLIP experiment framework")
    commands = parser.add_subparsers(dest="command", required=True)

    from ezclip import info

    info.add_arguments(commands.add_parser("info", help="parameter and FLOP counts as JSON (Table 7 columns)"))

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"info": info.run}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        # A user's mistake (bad name, path, shape): one line, no traceback.
        print(f"ezclip {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
