"""`make reproduce-tableN`: the Hydra multirun behind one paper table, then `ezclip report`.

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

# Per table: one or more Hydra sweeps, each a job per combination of its values. Table 7 (efficiency)
# is not a sweep: it is `ezclip info --throughput` on the machine's GPU (or CPU).
B2N_ALL = ["table3_k400", "table3_hmdb51", "table3_ucf101", "table3_ssv2"]
TABLES: dict[int, list[dict[str, list[str]]]] = {
    1: [{"experiment": ["table1_zs_b32_t8", "table1_zs_b16_t8", "table1_zs_b16_t16", "table1_zs_l14_t8"]}],
    2: [{
        "experiment": ["table2_k400_b16", "table2_hmdb51_b16", "table2_ucf101_b16", "table2_ssv2_b16"],
        "protocol.seed": ["1", "2", "3"],
    }],
    3: [{"experiment": B2N_ALL, "model/backbone": ["vit_b32", "vit_b16", "vit_l14"]}],
    4: [{
        "experiment": ["table4_fs_hmdb51_b16", "table4_fs_ucf101_b16", "table4_fs_ssv2_b16"],
        "protocol.shots": ["2", "4", "8", "16"],
    }],
    5: [{
        "experiment": ["table5_k400_b16", "table5_hmdb51_b16", "table5_ucf101_b16", "table5_ssv2_b16"],
        "model.tvp": ["off", "deep"],
        "model.motion_loss": ["false", "true"],
    }],
    6: [{
        "experiment": ["table6_hmdb51_b16", "table6_ucf101_b16", "table6_ssv2_b16"],
        "data.text.source": ["templates", "descriptions"],
    }],
    10: [{"experiment": ["table10_zs_b16"], "data.text.source": ["templates", "descriptions"]}],
    11: [
        {"experiment": ["table11_zs_b16"], "model.tvp": ["off", "deep"], "model.motion_loss": ["false", "true"]},
        {"experiment": ["table11_zs_b16"], "model.tvp": ["first"], "model.motion_loss": ["true"]},
    ],
    12: [{
        "experiment": ["table12_fs_hmdb51_b16", "table12_fs_ucf101_b16", "table12_fs_ssv2_b16"],
        "model.tvp": ["off", "deep"],
        "model.motion_loss": ["false", "true"],
        "protocol.shots": ["2", "4", "8", "16"],
    }],
    13: [{
        "experiment": ["table13_fs_hmdb51_b16", "table13_fs_ucf101_b16", "table13_fs_ssv2_b16"],
        "data.text.source": ["templates", "descriptions"],
        "protocol.shots": ["2", "4", "8", "16"],
    }],
}  # fmt: skip
EFFICIENCY_TABLE = 7
EFFICIENCY = {"backbone": "ViT-B-16", "frames": 8, "batch_size": 32}


def jobs(table: int) -> list[list[str]]:
    if table == EFFICIENCY_TABLE:
        setting = [f"--{key.replace('_', '-')}={value}" for key, value in EFFICIENCY.items()]
        return [["ezclip", "info", *setting, "--throughput"]]
    if table not in TABLES:
        raise ValueError(f"table {table} has no reproduction config; configured: {sorted([*TABLES, EFFICIENCY_TABLE])}")
    return [[f"{key}={value}" for key, value in zip(sweep, values, strict=True)]
            for sweep in TABLES[table] for values in itertools.product(*sweep.values())]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=int)
    parser.add_argument("--dry-run", action="store_true", help="print the jobs and their count; run nothing")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    # Options such as --device=cuda:1 (Table 7) pass through like overrides.
    args, options = parser.parse_known_args(argv)
    args.overrides += options
    try:
        planned = jobs(args.table)
    except ValueError as error:
        print(f"reproduce: error: {error}", file=sys.stderr)
        return 2
    for job in planned:
        print(" ".join((job if args.table == EFFICIENCY_TABLE else ["ezclip", "train", *job]) + args.overrides))
    print(f"{len(planned)} jobs")
    if args.dry_run:
        return 0
    sweep_dir = (
        Path(os.environ.get("EZCLIP_OUTPUTS", "outputs")) / f"table{args.table}" / time.strftime("%Y%m%d-%H%M%S")
    )
    if args.table == EFFICIENCY_TABLE:
        runs = sweep_dir / "efficiency.json"
        sweep_dir.mkdir(parents=True)
        info = [sys.executable, "-m", "ezclip.cli", *planned[0][1:], *args.overrides, f"--out={runs}"]
        subprocess.run(info, check=True)
    else:
        sweeps = TABLES[args.table]
        for number, sweep in enumerate(sweeps):
            # One folder per sweep: Hydra numbers each sweep's jobs from 0.
            folder = sweep_dir if len(sweeps) == 1 else sweep_dir / f"sweep{number}"
            values = [f"{key}={','.join(v)}" for key, v in sweep.items()]
            command = [sys.executable, "-m", "ezclip.train", "-m", *values, *args.overrides,
                       f"hydra.sweep.dir={folder}"]  # fmt: skip
            subprocess.run(command, check=True)
        runs = sweep_dir
    report = [sys.executable, "-m", "ezclip.cli", "report", str(runs), "--table", str(args.table),
              "--out", str(sweep_dir / "report")]  # fmt: skip
    return subprocess.run(report).returncode


if __name__ == "__main__":
    raise SystemExit(main())
