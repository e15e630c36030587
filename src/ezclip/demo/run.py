"""`make demo` / `ezclip demo`: the whole pipeline on SynthMotion with the nano-CLIP, on a CPU.

1. render SynthMotion (real H.264 mp4 files; reused when present),
2. pretrain the nano-CLIP on single frames (cached; reused),
3. evaluate the frozen backbone zero-shot (tvp off, fresh adapters = the identity),
4. train EZ-CLIP variants through the same Hydra configs and Lightning code as real runs,
5. write outputs/demo/summary.{json,md,png} and print one table: top-1 and reversal-pair
   accuracy (each video of a time-reversal pair scored by choosing between the pair's classes).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ezclip.runs.config import compose
from ezclip.runs.plots import grouped_bars

log = logging.getLogger(__name__)
console = Console()

# (name, overrides): what the demo compares. The experiment config holds the shared settings.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("EZ-CLIP: TVP + motion loss", {"tvp": "deep", "motion_loss": True}),
    ("EZ-CLIP: TVP only", {"tvp": "deep", "motion_loss": False}),
    ("EZ-CLIP: no TVP, no motion loss (adapters only)", {"tvp": "off", "motion_loss": False}),
]
TEST_SET = "synthmotion"


def pair_accuracy(predictions: dict[str, np.ndarray], pairs: list[tuple[int, int]]) -> tuple[float, int]:
    """Share of videos of paired classes whose own class outscores its time-reversed partner."""
    partner = {}
    for a, b in pairs:
        partner[a], partner[b] = b, a
    labels, probs = predictions["label"], predictions["probs"].astype(np.float32)
    rows = [i for i, label in enumerate(labels) if int(label) in partner]
    if not rows:
        return float("nan"), 0
    correct = [probs[i, labels[i]] > probs[i, partner[int(labels[i])]] for i in rows]
    return float(np.mean(correct)), len(rows)


def run_variant(task: str, name: str, overrides: list[str], run_dir: Path, pairs) -> dict[str, Any]:
    from ezclip.eval import evaluate
    from ezclip.train import train

    if run_dir.exists():
        shutil.rmtree(run_dir)  # the demo's own previous output: every demo run starts its runs afresh
    cfg = compose(task, overrides + [f"paths.output_dir={run_dir}"])
    console.rule(f"[bold]{name}")
    started = time.time()
    (train if task == "train" else evaluate)(cfg)
    results = json.loads((run_dir / "results.json").read_text())
    test = results["test"][TEST_SET]
    predictions = dict(np.load(run_dir / "predictions" / f"{TEST_SET}.npz"))
    pair_acc, pair_videos = pair_accuracy(predictions, pairs)
    return {
        "variant": name,
        "tvp": cfg.model.tvp,
        "motion_loss": bool(cfg.model.motion_loss) if task == "train" else None,
        "trained": task == "train",
        "top1": test["top1"],
        "top5": test["top5"],
        "mean_class_acc": test["mean_class_acc"],
        "pair_accuracy": pair_acc,
        "pair_videos": pair_videos,
        "n_videos": test["num_videos"],
        "n_skipped": test["num_skipped"],
        "seconds": round(time.time() - started, 1),
        "run_dir": str(run_dir),
    }


def write_summary(rows: list[dict[str, Any]], out_dir: Path, meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps({"meta": meta, "variants": rows}, indent=2))
    lines = [
        "| variant | TVP | motion loss | top-1 | reversal-pair acc. | top-5 | videos | time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        motion = "—" if r["motion_loss"] is None else ("yes" if r["motion_loss"] else "no")
        lines.append(
            f"| {r['variant']} | {r['tvp']} | {motion} | {100 * r['top1']:.1f} | {100 * r['pair_accuracy']:.1f} | "
            f"{100 * r['top5']:.1f} | {r['n_videos']} | {r['seconds']:.0f} |"
        )
    chance = meta.get("chance_top1")
    notes = [
        "",
        f"Test set: {rows[0]['n_videos']} SynthMotion videos, {meta.get('num_classes')} classes "
        f"(chance top-1 {100 * chance:.1f}%); reversal-pair accuracy over {rows[0]['pair_videos']} videos of "
        "time-reversal pairs, chance 50%.",
    ]
    (out_dir / "summary.md").write_text("\n".join(lines + notes) + "\n")
    names = [r["variant"].replace("EZ-CLIP: ", "").replace(" (adapters only)", "") for r in rows]
    lines = {"reversal-pair chance (50%)": 50.0}
    if chance:
        lines["top-1 chance"] = 100 * chance
    grouped_bars(
        out_dir / "summary.png",
        names,
        {"top-1": [100 * r["top1"] for r in rows], "reversal-pair accuracy": [100 * r["pair_accuracy"] for r in rows]},
        lines=lines,
        title="ezclip demo: SynthMotion test set, nano-CLIP backbone",
        label_width=24,
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="ezclip demo — SynthMotion test set")
    for column in ("variant", "TVP", "motion", "top-1 %", "pair acc %", "videos", "s"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for r in rows:
        motion = "—" if r["motion_loss"] is None else ("yes" if r["motion_loss"] else "no")
        table.add_row(
            r["variant"],
            r["tvp"],
            motion,
            f"{100 * r['top1']:.1f}",
            f"{100 * r['pair_accuracy']:.1f}",
            str(r["n_videos"]),
            f"{r['seconds']:.0f}",
        )
    console.print(table)


def run_demo(
    out_dir: Path, data_dir: Path, cache_dir: Path, experiment: str = "demo", variants=VARIANTS
) -> list[dict[str, Any]]:
    """Render, pretrain, evaluate zero-shot, train `variants`; returns the summary rows."""
    from ezclip.demo.nano import ensure_nano
    from ezclip.demo.synth import generate

    started = time.time()
    common = [
        f"experiment={experiment}",
        f"paths.data_dir={data_dir}",
        f"paths.cache_dir={cache_dir}",
        f"paths.root_dir={Path.cwd()}",
        f"paths.log_dir={out_dir}",
    ]
    cfg = compose("train", common)
    synth_dir = Path(cfg.data.root)
    synth_args = dict(cfg.get("demo", {}).get("synth", {}))
    if not (synth_dir / "meta.json").is_file():
        console.rule("[bold]1. rendering SynthMotion")
        generate(synth_dir, **synth_args)
    else:
        console.print(f"SynthMotion already rendered in {synth_dir}: reusing it")
    pairs = [tuple(p["ids"]) for p in json.loads((synth_dir / "pairs.json").read_text())]
    num_classes = sum(1 for _ in open(synth_dir / "labels.csv")) - 1

    console.rule("[bold]2. nano-CLIP backbone")
    nano = ensure_nano(Path(cfg.model.pretrained).parent)  # where conf/model/backbone/nano.yaml reads it

    rows = [
        run_variant(
            "eval", "frozen nano-CLIP, zero-shot", common + ["model.tvp=off"], out_dir / "runs" / "zero_shot", pairs
        )
    ]
    for name, switches in variants:
        overrides = common + [f"model.{k}={str(v).lower()}" for k, v in switches.items()]
        slug = f"tvp-{switches['tvp']}_motion-{str(switches['motion_loss']).lower()}"
        rows.append(run_variant("train", name, overrides, out_dir / "runs" / slug, pairs))

    meta = {
        "num_classes": num_classes,
        "chance_top1": 1 / num_classes,
        "wall_seconds": round(time.time() - started),
        "synth_dir": str(synth_dir),
        "nano_weights": str(nano.weights),
        "experiment": experiment,
    }
    write_summary(rows, out_dir, meta)
    print_table(rows)
    console.print(f"wrote {out_dir / 'summary.json'}, summary.md, summary.png ({meta['wall_seconds']} s)")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="summary and run folders")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where SynthMotion is rendered")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="where the nano-CLIP goes (<dir>/nano); default ~/.cache/ezclip"
    )
    parser.add_argument("--experiment", default="demo", help="the experiment config with the demo's settings")


def run(args: argparse.Namespace) -> int:
    cache_dir = args.cache_dir or Path.home() / ".cache" / "ezclip"
    run_demo(args.out.resolve(), args.data_dir.resolve(), cache_dir.resolve(), args.experiment)
    return 0
