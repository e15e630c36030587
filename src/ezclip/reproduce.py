"""`make reproduce-tableN`: the Hydra multiruns of one paper table, then `ezclip report`.

The runs of Table N are defined once, in `experiments/tableN/sweep.yaml`.

python -m ezclip.reproduce 2 --dry-run      # each job: its recipe, list, videos, batch, epochs and steps; runs nothing
python -m ezclip.reproduce 2 trainer.devices=4   # extra overrides go to every job
python -m ezclip.reproduce 7 --device=cuda:1       # Table 7: extra arguments go to `ezclip info`
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
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


# A job with fewer optimizer steps than this is flagged: the paper's numbers took far more.
FEW_STEPS = 300


def pinned_line_counts() -> dict[str, int]:
    """The pinned split files' video counts (resources.tsv), keyed by `<owner>/<repo>/<path>`."""
    from ezclip.prep.splits import read_resources

    return {f"{r.repo}/{r.path}": r.lines for r in read_resources() if r.lines is not None}


def count_videos(list_file: str, pinned: dict[str, int]) -> tuple[int | None, str]:
    """A training list's video count and where it comes from: the file on disk, else the pinned table."""
    path = Path(list_file)
    if path.is_file():
        return sum(1 for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()), "on disk"
    for key, lines in pinned.items():
        if path.as_posix().endswith("/" + key):
            return lines, "pinned table"
    return None, "unknown: not on disk, no pinned count"


def plan(job: list[str], overrides: list[str], pinned: dict[str, int]) -> dict:
    """What one job will train: recipe, list, videos, global batch, epochs, optimizer and warmup steps."""
    from ezclip.runs.config import compose

    cfg = compose("train", [*job, *overrides])
    recipe = (cfg.get("recipe") or {}).get("name", "custom")
    videos, source = count_videos(str(cfg.data.train_list), pinned)
    # The global batch already counts accumulated micro-batches: one optimizer step per global batch.
    batch, epochs = int(cfg.data.batch_size), int(cfg.trainer.max_epochs)
    info = {"recipe": recipe, "list": str(cfg.data.train_list), "videos": videos, "source": source,
            "batch": batch, "epochs": epochs, "steps": None, "warmup": None}  # fmt: skip
    if videos is not None:
        per_epoch = videos // batch  # the last partial batch is dropped
        info["steps"] = per_epoch * epochs
        scheduler = cfg.model.scheduler
        if scheduler.get("warmup_epochs") is not None:
            info["warmup"] = round(scheduler.warmup_epochs * per_epoch)
        else:
            info["warmup"] = max(1, round(info["steps"] * scheduler.warmup_fraction))
    return info


def describe_plan(info: dict) -> str:
    steps = "?" if info["steps"] is None else f"{info['steps']:,}"
    flag = "  <-- few optimizer steps" if info["steps"] is not None and info["steps"] < FEW_STEPS else ""
    videos = "?" if info["videos"] is None else f"{info['videos']:,}"
    warmup = info["warmup"] or "?"
    return (f"    recipe={info['recipe']} list={Path(info['list']).name} videos={videos} ({info['source']}) "
            f"batch={info['batch']} epochs={info['epochs']} steps={steps} warmup={warmup}{flag}")  # fmt: skip


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
    pinned = {} if efficiency else pinned_line_counts()
    total, unknown, few = 0, 0, 0
    for job in planned:
        print(" ".join((job if efficiency else ["ezclip", "train", *job]) + args.overrides))
        if not efficiency:
            info = plan(job, args.overrides, pinned)
            print(describe_plan(info))
            if info["steps"] is None:
                unknown += 1
            else:
                total += info["steps"]
                few += info["steps"] < FEW_STEPS
    summary = f"{len(planned)} jobs"
    if not efficiency and not unknown:
        summary += f"; {total:,} optimizer steps in all"
    elif not efficiency:
        summary += (f"; {total:,} optimizer steps in the {len(planned) - unknown} jobs of known size, {unknown} of "
                    "unknown size (their training list is not on disk, and the pinned table has no count)")  # fmt: skip
    if few:
        summary += f"; {few} jobs under {FEW_STEPS} steps"
    print(summary)
    if args.dry_run:
        return 0
    sweep_dir = (
        Path(os.environ.get("EZCLIP_OUTPUTS", "outputs"))
        / f"table{args.table}"
        / f"{time.strftime('%Y%m%d-%H%M%S')}_{secrets.token_hex(3)}"
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
