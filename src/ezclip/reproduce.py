"""`make reproduce-tableN`: the Hydra multiruns of one paper table, then `ezclip report`.

The runs of Table N are defined once, in `experiments/tableN/sweep.yaml`.

python -m ezclip.reproduce 2 --dry-run      # one line per job, and their count; runs nothing
python -m ezclip.reproduce 2 trainer.devices=4   # extra overrides go to every job
python -m ezclip.reproduce 7 --device=cuda:1       # Table 7: extra arguments go to `ezclip info`
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ezclip.runs.config import experiments_dir


def override_value(value) -> str:
    """A YAML value as Hydra writes it on the command line (booleans lower-case)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def read_sweep(table: int) -> dict:
    """experiments/table<N>/sweep.yaml: `sweeps` (a list of {key: [values]}) or `efficiency` (Table 7)."""
    path = experiments_dir() / f"table{table}" / "sweep.yaml"
    if not path.is_file():
        tables = sorted(int(p.parent.name.removeprefix("table")) for p in experiments_dir().glob("table*/sweep.yaml"))
        raise ValueError(f"table {table} has no reproduction sweep ({path}); tables with one: {tables}")
    return yaml.safe_load(path.read_text())


def jobs(table: int) -> list[list[str]]:
    """Each job's command-line arguments: Hydra overrides, or `ezclip info` arguments for Table 7."""
    sweep = read_sweep(table)
    if "efficiency" in sweep:
        setting = [f"--{key.replace('_', '-')}={value}" for key, value in sweep["efficiency"].items()]
        return [["ezclip", "info", *setting, "--throughput"]]
    return [[f"{key}={override_value(value)}" for key, value in zip(one, values, strict=True)]
            for one in sweep["sweeps"] for values in itertools.product(*one.values())]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=int)
    parser.add_argument("--dry-run", action="store_true", help="print the jobs and their count; run nothing")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    # Options such as --device=cuda:1 (Table 7) pass through like overrides.
    args, options = parser.parse_known_args(argv)
    args.overrides += options
    try:
        sweep = read_sweep(args.table)
        planned = jobs(args.table)
    except ValueError as error:
        print(f"reproduce: error: {error}", file=sys.stderr)
        return 2
    efficiency = "efficiency" in sweep
    for job in planned:
        print(" ".join((job if efficiency else ["ezclip", "train", *job]) + args.overrides))
    print(f"{len(planned)} jobs")
    if args.dry_run:
        return 0
    sweep_dir = (
        Path(os.environ.get("EZCLIP_OUTPUTS", "outputs")) / f"table{args.table}" / time.strftime("%Y%m%d-%H%M%S")
    )
    if efficiency:
        runs = sweep_dir / "efficiency.json"
        sweep_dir.mkdir(parents=True)
        info = [sys.executable, "-m", "ezclip.cli", *planned[0][1:], *args.overrides, f"--out={runs}"]
        subprocess.run(info, check=True)
    else:
        sweeps = sweep["sweeps"]
        for number, one in enumerate(sweeps):
            # One folder per sweep: Hydra numbers each sweep's jobs from 0.
            folder = sweep_dir if len(sweeps) == 1 else sweep_dir / f"sweep{number}"
            values = [f"{key}={','.join(override_value(v) for v in vs)}" for key, vs in one.items()]
            command = [sys.executable, "-m", "ezclip.train", "-m", *values, *args.overrides,
                       f"hydra.sweep.dir={folder}"]  # fmt: skip
            subprocess.run(command, check=True)
        runs = sweep_dir
    report = [sys.executable, "-m", "ezclip.cli", "report", str(runs), "--table", str(args.table),
              "--out", str(sweep_dir / "report")]  # fmt: skip
    return subprocess.run(report).returncode


if __name__ == "__main__":
    raise SystemExit(main())
