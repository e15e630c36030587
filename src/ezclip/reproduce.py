"""`make reproduce-tableN`: the Hydra multirun behind one paper table, then `ezclip report`.

python -m ezclip.reproduce 2 --dry-run      # one line per job, and their count; runs nothing
python -m ezclip.reproduce 2 trainer.devices=4   # extra overrides go to every job
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

# Per table: the swept overrides (a job per combination). Only configured tables are listed.
TABLES: dict[int, dict[str, list[str]]] = {
    1: {
        "experiment": ["table1_zs_b32_t8", "table1_zs_b16_t8", "table1_zs_b16_t16", "table1_zs_l14_t8"],
    },
    2: {
        "experiment": ["table2_k400_b16", "table2_hmdb51_b16", "table2_ucf101_b16", "table2_ssv2_b16"],
        "protocol.seed": ["1", "2", "3"],
    },
    4: {
        "experiment": ["table4_fs_hmdb51_b16", "table4_fs_ucf101_b16", "table4_fs_ssv2_b16"],
        "protocol.shots": ["2", "4", "8", "16"],
    },
    5: {
        "experiment": ["table5_k400_b16", "table5_hmdb51_b16", "table5_ucf101_b16", "table5_ssv2_b16"],
        "model.tvp": ["off", "deep"],
        "model.motion_loss": ["false", "true"],
    },
}


def jobs(table: int) -> list[list[str]]:
    if table not in TABLES:
        raise ValueError(f"table {table} has no reproduction config yet; configured: {sorted(TABLES)}")
    sweep = TABLES[table]
    return [[f"{key}={value}" for key, value in zip(sweep, values, strict=True)]
            for values in itertools.product(*sweep.values())]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=int)
    parser.add_argument("--dry-run", action="store_true", help="print the jobs and their count; run nothing")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    args = parser.parse_args(argv)
    try:
        planned = jobs(args.table)
    except ValueError as error:
        print(f"reproduce: error: {error}", file=sys.stderr)
        return 2
    for job in planned:
        print("ezclip train " + " ".join(job + args.overrides))
    print(f"{len(planned)} jobs")
    if args.dry_run:
        return 0
    sweep_dir = (
        Path(os.environ.get("EZCLIP_OUTPUTS", "outputs")) / f"table{args.table}" / time.strftime("%Y%m%d-%H%M%S")
    )
    sweep = [f"{key}={','.join(values)}" for key, values in TABLES[args.table].items()]
    command = [sys.executable, "-m", "ezclip.train", "-m", *sweep, *args.overrides, f"hydra.sweep.dir={sweep_dir}"]
    subprocess.run(command, check=True)
    report = [sys.executable, "-m", "ezclip.cli", "report", str(sweep_dir), "--table", str(args.table),
              "--out", str(sweep_dir / "report")]  # fmt: skip
    return subprocess.run(report).returncode


if __name__ == "__main__":
    raise SystemExit(main())
