"""`ezclip report RUN_DIRS... --table N`: the paper's table from runs' results.json, beside the paper.

Cells are (dataset, test quantity); values are top-1 in %, mean ± sample std over the runs'
seeds (base-to-novel) or test splits (zero-shot); a single run shows no spread. HM = 2·b·n / (b + n)
of the mean base and novel. Runs that differ in protocol, recipe, backbone, frames or ablation
switches are never mixed into one cell, nor runs of one seed trained on different training lists:
each is an error naming the difference. A table refuses runs of a protocol it does not report
(Table 2's 16-shot lists vs Table 3's all base samples). Writes table<N>.md, table<N>.csv and
table<N>.png to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import statistics
from pathlib import Path
from typing import Any

# Factors that must agree within a cell (seed and split are what the cell aggregates over).
CELL_FACTORS = ("backbone", "frames", "tvp", "motion", "text")


def find_results(paths: list[Path], name: str = "results.json") -> list[dict[str, Any]]:
    runs = []
    for path in paths:
        files = [path] if path.is_file() else sorted(path.rglob(name))
        for file in files:
            run = json.loads(file.read_text())
            run["_path"] = str(file)
            runs.append(run)
    if not runs:
        raise FileNotFoundError(f"no {name} under {[str(p) for p in paths]}")
    return runs


def protocol_of(run: dict[str, Any]) -> dict[str, Any]:
    return run.get("config", {}).get("protocol") or {"name": "custom"}


def recipe_of(run: dict[str, Any]) -> str:
    return run.get("recipe", "custom")


def check_one_kind(runs: list[dict[str, Any]], where: str) -> dict[str, str]:
    """The factors all `runs` share; an error naming the first factor they disagree on.

    Besides the protocol and the factors, the runs must share their recipe, and runs of one repeat
    (seed or split) their training list (path aside: its content, by sha256).
    """
    names = {protocol_of(r)["name"] for r in runs}
    variants = {protocol_of(r).get("variant") for r in runs}
    if len(names) > 1 or len(variants) > 1:
        raise ValueError(f"{where}: runs of different protocols would be mixed: {sorted(map(str, names | variants))}")
    recipes = {recipe_of(r) for r in runs}
    if len(recipes) > 1:
        raise ValueError(f"{where}: runs of different recipes would be mixed ({sorted(recipes)}): {_paths(runs)}")
    lists: dict[Any, set[str]] = {}
    for run in runs:
        protocol = protocol_of(run)
        repeat = (protocol.get("seed"), protocol.get("split"), protocol.get("shots"))
        if run.get("train_list"):
            lists.setdefault(repeat, set()).add(run["train_list"]["sha256"])
    for hashes in lists.values():
        if len(hashes) > 1:
            raise ValueError(f"{where}: runs trained on different lists for the same seed/split would be mixed "
                             f"(sha256 {sorted(h[:12] for h in hashes)}): {_paths(runs)}")  # fmt: skip
    shared = {"recipe": recipes.pop()}
    for factor in CELL_FACTORS:
        values = {r["factors"][factor] for r in runs}
        if len(values) > 1:
            raise ValueError(f"{where}: runs with different {factor} would be mixed ({sorted(values)}): {_paths(runs)}")
        shared[factor] = values.pop()
    return shared


def _paths(runs: list[dict[str, Any]]) -> list[str]:
    return [r["_path"] for r in runs]


def check_protocol(runs: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    """Refuse runs of a protocol the table does not report, naming both."""
    table = expected["table"]
    wrong = sorted({protocol_of(r)["name"] for r in runs} - {expected["protocol"]})
    if wrong:
        raise ValueError(f"table {table} is a {expected['protocol']} table; runs of protocol {wrong} were given")
    if "accepts" not in expected:
        return  # a table without a list of protocol variants takes any (they still never share a cell)
    accepted = {a["variant"]: a["what"] for a in expected["accepts"]}
    for variant in {protocol_of(r).get("variant") for r in runs} - set(accepted):
        odd = [r["_path"] for r in runs if protocol_of(r).get("variant") == variant]
        follows = "; or ".join(accepted.values())
        raise ValueError(
            f"table {table} reports {follows}; {len(odd)} run(s) followed protocol variant {variant!r} instead, "
            f"which this table's numbers were not measured on: {odd[:3]}"
        )


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation; a single value has no spread (None)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def harmonic_mean(base: float, novel: float) -> float:
    return 2 * base * novel / (base + novel) if base + novel > 0 else 0.0


def base2novel_cells(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells = []
    for dataset in sorted({r["factors"]["dataset"] for r in runs}):
        group = [r for r in runs if r["factors"]["dataset"] == dataset]
        shared = check_one_kind(group, dataset)
        seeds = sorted(protocol_of(r).get("seed", 0) for r in group)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{dataset}: several runs of the same seed {seeds}: pass one run per seed")
        all_samples = protocol_of(group[0]).get("variant") == "all_base_samples"
        base = mean_std([100 * r["test"]["base"]["top1"] for r in group])
        novel = mean_std([100 * r["test"]["novel"]["top1"] for r in group])
        variant = "base2novel, all base samples" if all_samples else f"base2novel, seeds {seeds}"
        common = {"dataset": dataset, "n": len(group), "variant": variant, **shared}
        cells += [
            {**common, "metric": "base", "mean": base[0], "std": base[1]},
            {**common, "metric": "novel", "mean": novel[0], "std": novel[1]},
            {**common, "metric": "hm", "mean": harmonic_mean(base[0], novel[0]), "std": None,
             "variant": variant + " (HM of the means)"},
        ]  # fmt: skip
    return cells


def zero_shot_cells(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shared = check_one_kind(runs, "zero_shot")
    by_target: dict[str, list[float]] = {}
    for run in runs:
        for name, result in run["test"].items():
            target = re.sub(r"_split\d+$", "", name)
            by_target.setdefault(target, []).append(100 * result["top1"])
    variant = protocol_of(runs[0]).get("variant", "three_splits")
    return [
        {"dataset": target, "metric": "top1", "mean": mean_std(values)[0], "std": mean_std(values)[1],
         "n": len(values), "variant": f"zero_shot ({variant}), mean over splits", **shared}
        for target, values in sorted(by_target.items())
    ]  # fmt: skip


def few_shot_cells(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells = []
    for dataset in sorted({r["factors"]["dataset"] for r in runs}):
        group = [r for r in runs if r["factors"]["dataset"] == dataset]
        shared = check_one_kind(group, dataset)
        for shots in sorted({protocol_of(r)["shots"] for r in group}):
            values = [100 * result["top1"] for r in group if protocol_of(r)["shots"] == shots
                      for result in r["test"].values()]  # fmt: skip
            mean, std = mean_std(values)
            cells.append({"dataset": dataset, "metric": f"K={shots}", "mean": mean, "std": std, "n": len(values),
                          "variant": f"few_shot, {shots} shots per class", **shared})  # fmt: skip
    return cells


BUILDERS = {"base2novel": base2novel_cells, "zero_shot": zero_shot_cells, "few_shot": few_shot_cells}


# How a run's factors read as the values a paper row names (backbone, frames, and for the
# ablation tables tvp and motion loss).
ROW_VALUE = {
    "backbone": lambda factors: factors["backbone"].removesuffix("-quickgelu"),
    "frames": lambda factors: int(factors["frames"].removeprefix("T")),
    "tvp": lambda factors: factors["tvp"].removeprefix("tvp-"),
    "motion": lambda factors: factors["motion"] == "motion",
    "descriptions": lambda factors: factors["text"] == "text-descriptions",
}


def row_of(run: dict[str, Any], keys: tuple[str, ...]) -> tuple:
    """The paper-row identity of a run: its values for `keys` (e.g. backbone, frames)."""
    return tuple(ROW_VALUE[key](run["factors"]) for key in keys)


def build_report(runs: list[dict[str, Any]], expected: dict[str, Any]) -> list[dict[str, Any]]:
    """Cells of the table: runs grouped into the paper's rows, each cell beside the paper's number."""
    protocol = expected["protocol"]
    check_protocol(runs, expected)
    keys = tuple(k for k in expected["rows"][0] if k != "cells")
    paper_rows = {tuple(row[k] for k in keys): row["cells"] for row in expected["rows"]}
    cells = []
    for row in sorted({row_of(r, keys) for r in runs}):
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, row, strict=True))
        if row not in paper_rows:
            raise ValueError(f"table {expected['table']} has no row {label}; its rows: {sorted(paper_rows)}")
        for cell in BUILDERS[protocol]([r for r in runs if row_of(r, keys) == row]):
            paper_cells = paper_rows[row].get(cell["dataset"], {})
            paper = paper_cells.get(cell["metric"])
            cells.append({**cell, "row": label, "paper": paper,
                          "diff": None if paper is None else cell["mean"] - paper})  # fmt: skip
            if cell["metric"] == "hm" and truncated_hm(paper_cells):
                cells[-1]["variant"] += f"; the paper's HM is truncated, not rounded ({truncated_hm(paper_cells)})"
    return cells


def truncated_hm(paper_cells: dict[str, float]) -> str | None:
    """When a paper HM matches its own base and novel only truncated to one decimal: the exact value."""
    if not {"base", "novel", "hm"} <= set(paper_cells):
        return None
    exact = harmonic_mean(paper_cells["base"], paper_cells["novel"])
    printed = paper_cells["hm"]
    if round(exact, 1) != printed and abs(math.floor(exact * 10) / 10 - printed) < 1e-9:
        return f"2bn/(b+n) = {exact:.2f}"
    return None


def efficiency_cells(infos: list[dict[str, Any]], expected: dict[str, Any]) -> list[dict[str, Any]]:
    """Table 7 from `ezclip info --throughput` JSON: each number says how it was counted or measured."""
    (paper_row,) = expected["rows"]
    paper = paper_row["cells"]["efficiency"]
    cells = []
    for info in infos:
        row = f"backbone={info['backbone']}, frames={info['num_frames']}"
        if (info["backbone"], info["num_frames"]) != (paper_row["backbone"], paper_row["frames"]):
            raise ValueError(f"table 7 is for {paper_row['backbone']} at {paper_row['frames']} frames, got {row}")
        params, flops, speed = info["parameters"], info["flops_per_view"], info.get("throughput")
        values = [
            (
                "GFLOPs",
                flops["linear_conv_gmacs"],
                f"G multiply-accumulates of nn.Linear + nn.Conv2d per view (fvcore-style); every product: "
                f"{flops['full_gmacs']:.1f}, as executed: {flops['executed_gmacs']:.1f}",
            ),
            (
                "total params (M)",
                params["vision_total"] / 1e6,
                f"vision tower + prompts + vision adapters; with the text tower: {params['total'] / 1e6:.1f}",
            ),
            ("tunable params (M)", params["trainable"] / 1e6, "prompts + adapters of both towers"),
        ]
        if speed:
            where = speed.get("device_name", speed["device"])
            values.insert(
                1,
                (
                    "TP (views/s)",
                    speed["ezclip_views_per_s"],
                    f"{where}, batch {speed['batch_size']}, {speed['dtype']}; plain CLIP frames + mean: "
                    f"{speed['plain_views_per_s']:.1f} views/s",
                ),
            )
        for metric, value, how in values:
            cells.append({"row": row, "dataset": "—", "metric": metric, "mean": value, "std": None, "n": 1,
                          "variant": how, "paper": paper[metric], "diff": value - paper[metric]})  # fmt: skip
    return cells


def _number(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else (f"{value:+.1f}" if signed else f"{value:.1f}")


def _cell_text(cell: dict[str, Any]) -> str:
    """`mean ± std`; a single run has no spread to show, so it is the mean alone."""
    return _number(cell["mean"]) + (f" ± {cell['std']:.1f}" if cell["std"] is not None else "")


def write_report(cells: list[dict[str, Any]], expected: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"table{expected['table']}"
    columns = ["row", "dataset", "metric", "mean", "std", "n", "paper", "diff", "variant", "recipe", *CELL_FACTORS]
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(cells)

    lines = [
        f"# {expected['title']}",
        "",
        "| model | dataset | metric | ours | paper | diff | runs | recipe | protocol variant |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c['row']} | {c['dataset']} | {c['metric']} | {_cell_text(c)} | {_number(c['paper'])} | "
            f"{_number(c['diff'], signed=True)} | {c['n']} | {c.get('recipe', '—')} | {c['variant']} |"
        )
    lines += ["", f"Paper numbers: {expected['source']}. Ours: top-1 (%) from the runs' results.json."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    _plot(cells, expected, stem.with_suffix(".png"))
    return [stem.with_suffix(s) for s in (".md", ".csv", ".png")]


def _plot(cells: list[dict[str, Any]], expected: dict[str, Any], path: Path) -> None:
    """Grouped bars: one group per (dataset, metric), one bar per paper row, the paper's value as a tick."""
    from ezclip.runs.plots import grouped_bars

    groups = list(dict.fromkeys(f"{c['dataset']} {c['metric']}".strip("— ") for c in cells))
    rows = list(dict.fromkeys(c["row"] for c in cells))
    at = {(f"{c['dataset']} {c['metric']}".strip("— "), c["row"]): c for c in cells}

    def column(row: str, key: str) -> list[float | None]:
        return [at[(g, row)][key] if (g, row) in at else None for g in groups]

    unit = expected.get("unit", "top-1 (%)")
    grouped_bars(
        path,
        groups,
        {row: column(row, "mean") for row in rows},
        errors={row: column(row, "std") for row in rows},
        markers={row: column(row, "paper") for row in rows},
        ylabel=unit,
        title=expected["title"],
        ylim=(0, 100) if "%" in unit else None,
    )


# --- W&B dashboard ---------------------------------------------------------------------------------

# How a paper row's keys read in a run's logged (resolved) config.
ROW_CONFIG_KEYS = {
    "backbone": "model.backbone",
    "frames": "model.num_frames",
    "tvp": "model.tvp",
    "motion": "model.motion_loss",
    "descriptions": "data.text.source",
}
# Hyperparameters a sweep may vary: those that do get a parallel-coordinates panel.
SWEPT_KEYS = ("model.optimizer.lr", "model.optimizer.weight_decay", "model.motion_weight", "data.batch_size",
              "trainer.max_epochs")  # fmt: skip


def _config_value(run: dict[str, Any], dotted: str) -> Any:
    value: Any = run.get("config", {})
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def dashboard_spec(
    runs: list[dict[str, Any]], cells: list[dict[str, Any]], expected: dict[str, Any], project: str, entity: str | None
) -> dict[str, Any]:
    """The W&B report of a paper table, as plain data: the results table beside the paper's numbers,
    one bar panel per test metric and one training-curve panel per logged curve, both grouped by the
    table's factors (the runs of one report cell, i.e. one W&B group, averaged), and a
    parallel-coordinates panel over the hyperparameters the runs vary."""
    keys = [k for k in expected["rows"][0] if k != "cells"]
    group_by = ["dataset.name", *(ROW_CONFIG_KEYS[k] for k in keys)]
    metrics = sorted({f"test/{name}/top1" for run in runs for name in run.get("test", {})})
    swept = [k for k in SWEPT_KEYS if len({json.dumps(_config_value(r, k)) for r in runs}) > 1]
    panels = [{"kind": "bar", "title": metric, "metric": metric, "group_by": group_by} for metric in metrics]
    panels += [
        {"kind": "line", "title": curve, "y": curve, "group_by": group_by} for curve in ("train/loss", "val/top1")
    ]
    if swept:
        panels.append({"kind": "parallel", "title": "hyperparameters", "columns": [*swept, *metrics]})
    lines = ["| model | dataset | metric | ours | paper | runs |", "|---|---|---|---|---|---|"]
    lines += [f"| {c['row']} | {c['dataset']} | {c['metric']} | {_cell_text(c)} | {_number(c['paper'])} | {c['n']} |"
              for c in cells]  # fmt: skip
    return {
        "entity": entity,
        "project": project,
        "title": f"ezclip: {expected['title']}",
        "description": f"Table {expected['table']} reproduced; paper numbers: {expected['source']}.",
        "results_markdown": "\n".join(lines),
        "run_filter": {"tags": [f"table{expected['table']}"], "groups": sorted({r.get("cell", "") for r in runs})},
        "panels": panels,
    }


def wandb_report(spec: dict[str, Any]):
    """A wandb-workspaces Report built from `dashboard_spec` data (nothing is sent until `.save()`)."""
    import wandb_workspaces.reports.v2 as wr

    panels = []
    for panel in spec["panels"]:
        if panel["kind"] == "bar":
            panels.append(wr.BarPlot(title=panel["title"], metrics=[panel["metric"]], groupby_aggfunc="mean",
                                     groupby_rangefunc="stddev"))  # fmt: skip
        elif panel["kind"] == "line":
            panels.append(wr.LinePlot(title=panel["title"], y=[panel["y"]], groupby_aggfunc="mean",
                                      groupby_rangefunc="stddev"))  # fmt: skip
        else:
            columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(c) if not c.startswith("test/") else
                                                        wr.SummaryMetric(c)) for c in panel["columns"]]  # fmt: skip
            panels.append(wr.ParallelCoordinatesPlot(title=panel["title"], columns=columns))
    tags = ", ".join(repr(t) for t in spec["run_filter"]["tags"])
    runset = wr.Runset(
        entity=spec["entity"] or "",
        project=spec["project"],
        name="runs of this table",
        filters=f"Tags('tags') in [{tags}]",
        groupby=[f"config.{key}" for key in spec["panels"][0]["group_by"]] if spec["panels"] else [],
    )
    return wr.Report(
        project=spec["project"],
        entity=spec["entity"] or "",
        title=spec["title"],
        description=spec["description"],
        blocks=[
            wr.H1(spec["title"]),
            wr.MarkdownBlock(spec["results_markdown"]),
            wr.PanelGrid(runsets=[runset], panels=panels),
        ],
    )


def publish_dashboard(spec: dict[str, Any], out: Path) -> str:
    """Write the spec to `<out>/table<N>.wandb.json`; when W&B is online, also save the report. Says which."""
    from ezclip.runs.loggers import wandb_host, wandb_logged_in

    path = out / "wandb_report.json"
    path.write_text(json.dumps(spec, indent=2) + "\n")
    offline = os.environ.get("WANDB_MODE") in ("offline", "disabled") or not wandb_logged_in()
    if offline:
        return (f"W&B report written to {path} (offline: not logged in to {wandb_host()}); publish it with the "
                "same `ezclip report ... --wandb` once logged in (`wandb login [--host URL]`)")  # fmt: skip
    report = wandb_report(spec).save()
    return f"W&B report: {report.url} (spec in {path})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="+",
        type=Path,
        help="run folders, multirun folders or results.json files (table 7: efficiency.json)",
    )
    parser.add_argument("--table", type=int, required=True, help="the paper's table number (experiments/tableN)")
    parser.add_argument("--expected", type=Path, default=None, help="default: experiments/table<N>/expected.json")
    parser.add_argument("--out", type=Path, default=Path("outputs/reports"), help="where table<N>.{md,csv,png} go")
    parser.add_argument("--wandb", action="store_true", help="also make the table's W&B report (a spec file offline)")
    parser.add_argument("--project", default="ezclip", help="with --wandb: the W&B project the runs logged to")
    parser.add_argument("--entity", default=None, help="with --wandb: the W&B entity (default: yours)")


def run(args: argparse.Namespace) -> int:
    from ezclip.runs.config import experiments_dir

    expected_path = args.expected or experiments_dir() / f"table{args.table}" / "expected.json"
    if not expected_path.is_file():
        raise FileNotFoundError(f"no expected numbers for table {args.table}: {expected_path}")
    expected = json.loads(expected_path.read_text())
    if expected["protocol"] == "efficiency":
        runs = find_results(args.runs, "efficiency.json")
        cells = efficiency_cells(runs, expected)
    else:
        runs = find_results(args.runs)
        cells = build_report(runs, expected)
    written = write_report(cells, expected, args.out)
    print(written[0].read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    if args.wandb:
        print(publish_dashboard(dashboard_spec(runs, cells, expected, args.project, args.entity), args.out))
    return 0
