"""`ezclip report` on fabricated results.json files with known answers."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from ezclip.cli import main

FACTORS = {"backbone": "ViT-B-16", "frames": "T8", "tvp": "tvp-deep", "motion": "motion", "text": "text-descriptions"}


def write_run(root: Path, name: str, dataset: str, protocol: dict, test: dict, **factors) -> Path:
    """A fabricated run folder with a results.json of the fields the report reads."""
    run = root / name
    run.mkdir(parents=True)
    results = {
        "factors": {**FACTORS, "dataset": dataset, "protocol": protocol["name"], **factors},
        "config": {"protocol": protocol},
        "test": test,
    }
    (run / "results.json").write_text(json.dumps(results))
    return run


def fake_run(root: Path, name: str, dataset: str, seed: int, base: float, novel: float, **factors) -> Path:
    """A base-to-novel run of one seed."""
    test = {"base": {"top1": base, "num_videos": 10}, "novel": {"top1": novel, "num_videos": 10}}
    return write_run(root, name, dataset, {"name": "base2novel", "seed": seed}, test, **factors)


def read_csv_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    import csv

    with open(path) as f:
        return {(r["dataset"], r["metric"]): r for r in csv.DictReader(f)}


def test_base2novel_means_std_and_hm_of_the_means(tmp_path, capsys):
    sweep = tmp_path / "multirun"
    bases, novels = [0.70, 0.74, 0.78], [0.50, 0.60, 0.55]
    for seed, (b, n) in enumerate(zip(bases, novels, strict=True), start=1):
        fake_run(sweep, str(seed), "hmdb51", seed, b, n)
    fake_run(sweep, "ucf", "ucf101", 1, 0.90, 0.80)
    assert main(["report", str(sweep), "--table", "2", "--out", str(tmp_path / "out")]) == 0
    rows = read_csv_rows(tmp_path / "out" / "table2.csv")
    base, novel = 100 * statistics.fmean(bases), 100 * statistics.fmean(novels)
    assert float(rows[("hmdb51", "base")]["mean"]) == pytest.approx(base)
    assert float(rows[("hmdb51", "base")]["std"]) == pytest.approx(100 * statistics.stdev(bases))
    assert float(rows[("hmdb51", "hm")]["mean"]) == pytest.approx(2 * base * novel / (base + novel))
    assert float(rows[("hmdb51", "base")]["paper"]) == 77.0  # experiments/table2/expected.json
    assert float(rows[("hmdb51", "base")]["diff"]) == pytest.approx(base - 77.0)
    assert float(rows[("ucf101", "hm")]["mean"]) == pytest.approx(2 * 90 * 80 / 170)
    assert rows[("hmdb51", "novel")]["variant"] == "base2novel, seeds [1, 2, 3]"
    markdown = (tmp_path / "out" / "table2.md").read_text()
    assert "| backbone=ViT-B-16, frames=8 | hmdb51 | base | 74.0 ± 4.0 | 77.0 | -3.0 | 3 |" in markdown
    assert (tmp_path / "out" / "table2.png").stat().st_size > 0


@pytest.mark.parametrize(
    "other, message",
    [
        ({"backbone": "ViT-B-32"}, "no row backbone=ViT-B-32, frames=8"),
        ({"tvp": "tvp-off"}, "different tvp"),
    ],
)
def test_runs_of_different_kinds_are_never_mixed(tmp_path, capsys, other, message):
    fake_run(tmp_path, "a", "ucf101", 1, 0.9, 0.8)
    fake_run(tmp_path, "b", "ucf101", 2, 0.9, 0.8, **other)
    assert main(["report", str(tmp_path), "--table", "2", "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_other_protocols_and_repeated_seeds_are_refused(tmp_path, capsys):
    run = fake_run(tmp_path / "x", "a", "ucf101", 1, 0.9, 0.8)
    data = json.loads((run / "results.json").read_text())
    data["config"]["protocol"] = {"name": "few_shot", "shots": 2}
    (run / "results.json").write_text(json.dumps(data))
    assert main(["report", str(tmp_path / "x"), "--table", "2", "--out", str(tmp_path / "out")]) == 2
    assert "a base2novel table" in capsys.readouterr().err
    fake_run(tmp_path / "y", "a", "ucf101", 1, 0.9, 0.8)
    fake_run(tmp_path / "y", "b", "ucf101", 1, 0.8, 0.8)
    assert main(["report", str(tmp_path / "y"), "--table", "2", "--out", str(tmp_path / "out")]) == 2
    assert "same seed" in capsys.readouterr().err


def test_zero_shot_mean_and_std_over_the_splits(tmp_path, capsys):
    hmdb = [0.50, 0.52, 0.54]
    test = {f"hmdb51_split{i}": {"top1": v} for i, v in enumerate(hmdb, start=1)}
    test |= {f"ucf101_split{i}": {"top1": 0.8} for i in (1, 2, 3)}
    run = write_run(tmp_path, "zs", "k400", {"name": "zero_shot", "variant": "three_splits"}, test)
    expected = tmp_path / "expected.json"
    expected.write_text(
        json.dumps(
            {
                "table": 1,
                "title": "zero-shot",
                "source": "test",
                "protocol": "zero_shot",
                "rows": [{"backbone": "ViT-B-16", "frames": 8, "cells": {"hmdb51": {"top1": 52.9}}}],
            }
        )
    )
    assert main(["report", str(run), "--table", "1", "--expected", str(expected), "--out", str(tmp_path / "o")]) == 0
    rows = read_csv_rows(tmp_path / "o" / "table1.csv")
    assert float(rows[("hmdb51", "top1")]["mean"]) == pytest.approx(52.0)
    assert float(rows[("hmdb51", "top1")]["std"]) == pytest.approx(2.0)
    assert rows[("hmdb51", "top1")]["n"] == "3" and rows[("ucf101", "top1")]["paper"] == ""


def test_reproduce_table2_dry_run_lists_4_datasets_x_3_seeds(capsys):
    from ezclip.reproduce import main as reproduce

    assert reproduce(["2", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the 16-shot lists' sizes come from the pinned table: 3,200 / 416 / 816 / 1,392 videos per seed
    assert lines[-1] == "12 jobs; 32,250 optimizer steps in all"
    jobs, plans = lines[:-1:2], lines[1:-1:2]
    assert len(set(jobs)) == 12 and all(job.startswith("ezclip train ") for job in jobs)
    for dataset in ("k400", "hmdb51", "ucf101", "ssv2"):
        assert sum(f"experiment=table2_{dataset}_b16 " in job for job in jobs) == 3
    hmdb = plans[[i for i, job in enumerate(jobs) if "table2_hmdb51" in job][0]]
    assert "recipe=authors list=fs_base_s1_train.txt videos=416 (pinned table) batch=20 epochs=50" in hmdb
    assert "steps=1,000 warmup=100" in hmdb and "few optimizer steps" not in hmdb
    assert reproduce(["9", "--dry-run"]) == 2


def test_the_paper_recipe_flags_runs_with_few_optimizer_steps(capsys):
    from ezclip.reproduce import main as reproduce

    assert reproduce(["4", "--dry-run", "recipe=paper"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "12 jobs; 6,550 optimizer steps in all; 6 jobs under 300 steps"
    assert (
        "recipe=paper list=train1_few_shot_2.txt videos=102 (pinned table) batch=70 epochs=50 steps=50 " in (lines[1])
    )
    assert lines[1].endswith("<-- few optimizer steps")


# The paper's tables: rows x datasets x settings (Table 11 has 5 rows, its 'first layer only' row alone).
JOB_COUNTS = {1: 4, 2: 12, 3: 4 * 3, 4: 3 * 4, 5: 4 * 4, 6: 3 * 2, 7: 1, 10: 2, 11: 5, 12: 3 * 4 * 4, 13: 3 * 2 * 4}


def test_every_table_has_its_jobs_and_every_job_composes(capsys):
    from hydra import compose, initialize_config_dir

    from ezclip.reproduce import jobs
    from ezclip.runs.config import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for table, count in JOB_COUNTS.items():
            planned = jobs(table)
            assert len(planned) == len({tuple(job) for job in planned}) == count, table
            if planned[0][:2] == ["ezclip", "info"]:  # Table 7 measures; it trains nothing
                continue
            for job in planned:
                cfg = compose("train", overrides=job)
                assert f"table{table}" in cfg.tags, (job, cfg.tags)
        # The authors' zero-shot variant is one override away from any zero-shot table.
        authors = compose("train", overrides=["experiment=table1_zs_b16_t8", "protocol=zero_shot_authors"])
        assert authors.protocol.variant == "authors_split1_k600_232" and "k600" in authors.data.test_sets
    table3 = [tuple(job) for job in jobs(3)]
    assert ("experiment=table3_ssv2", "model/backbone=vit_l14") in table3
    assert ["experiment=table11_zs_b16", "model.tvp=first", "model.motion_loss=true"] in jobs(11)


def test_reproduce_runs_each_sweep_into_its_own_folder_then_the_report(tmp_path, monkeypatch, capsys):
    import subprocess

    from ezclip import reproduce

    commands = []
    monkeypatch.setattr(
        subprocess, "run", lambda command, **kw: commands.append(command) or subprocess.CompletedProcess(command, 0)
    )
    monkeypatch.setenv("EZCLIP_OUTPUTS", str(tmp_path))
    assert reproduce.main(["11", "trainer.devices=2"]) == 0
    sweeps, report = commands[:-1], commands[-1]
    assert len(sweeps) == 2
    assert [c[c.index("-m", 2) + 1 :] for c in sweeps][1][:3] == [
        "experiment=table11_zs_b16",
        "model.tvp=first",
        "model.motion_loss=true",
    ]
    folders = [c[-1].removeprefix("hydra.sweep.dir=") for c in sweeps]
    assert all("trainer.devices=2" in c for c in sweeps)
    assert folders[0].endswith("sweep0") and folders[1].endswith("sweep1")
    assert report[3:6] == ["report", str(Path(folders[0]).parent), "--table"]
    commands.clear()
    assert reproduce.main(["7", "--device=cuda:1"]) == 0
    info, report = commands
    assert info[3:5] == ["info", "--backbone=ViT-B-16"] and "--throughput" in info and "--device=cuda:1" in info
    assert report[4].endswith("efficiency.json")


def test_table7_from_info_with_throughput(tmp_path, capsys):
    from helpers import TINY

    info = tmp_path / "efficiency.json"
    argv = ["info", "--backbone", TINY, "--frames", "4", "--batch-size", "2", "--throughput", "--device", "cpu"]
    assert main([*argv, "--out", str(info)]) == 0
    measured = json.loads(info.read_text())
    assert measured["throughput"]["ezclip_views_per_s"] > 0 and measured["throughput"]["plain_views_per_s"] > 0
    assert main(["info", "--backbone", TINY, "--frames", "4", "--out", str(tmp_path / "one.json")]) == 0
    one_view = json.loads((tmp_path / "one.json").read_text())["flops_per_view"]
    for key in ("full_gmacs", "linear_conv_gmacs", "executed_gmacs"):  # per view, whatever the counted batch
        assert measured["flops_per_view"][key] == pytest.approx(one_view[key])
    # The table is for ViT-B/16 at 8 frames: another model is refused; a B/16 JSON gives each number.
    assert main(["report", str(info), "--table", "7", "--out", str(tmp_path / "o")]) == 2
    assert "table 7 is for ViT-B-16 at 8 frames" in capsys.readouterr().err
    measured.update(backbone="ViT-B-16", num_frames=8)
    measured["parameters"].update(vision_total=87_500_000, total=150_000_000, trainable=5_204_736)
    measured["flops_per_view"].update(linear_conv_gmacs=95.7, full_gmacs=146.5, executed_gmacs=136.3)
    measured["throughput"].update(ezclip_views_per_s=300.0, plain_views_per_s=310.0)
    info.write_text(json.dumps(measured))
    assert main(["report", str(tmp_path), "--table", "7", "--out", str(tmp_path / "o")]) == 0
    rows = {r["metric"]: r for r in read_csv_rows(tmp_path / "o" / "table7.csv").values()}
    assert float(rows["GFLOPs"]["diff"]) == pytest.approx(95.7 - 102)
    assert float(rows["TP (views/s)"]["diff"]) == pytest.approx(300.0 - 322.4)
    assert float(rows["total params (M)"]["mean"]) == pytest.approx(87.5)
    assert float(rows["tunable params (M)"]["mean"]) == pytest.approx(5.204736)
    assert "every product: 146.5" in rows["GFLOPs"]["variant"]


def test_table1_rows_are_models_and_each_row_gets_its_own_paper_numbers(tmp_path, capsys):
    for name, frames, top1 in (("a", "T8", 0.5), ("b", "T16", 0.6)):
        test = {f"ucf101_split{i}": {"top1": top1} for i in (1, 2, 3)}
        write_run(tmp_path, name, "k400", {"name": "zero_shot", "variant": "three_splits"}, test, frames=frames)
    assert main(["report", str(tmp_path), "--table", "1", "--out", str(tmp_path / "o")]) == 0
    markdown = (tmp_path / "o" / "table1.md").read_text()
    assert "| backbone=ViT-B-16, frames=8 | ucf101 | top1 | 50.0 ± 0.0 | 79.1 | -29.1 | 3 |" in markdown
    assert "| backbone=ViT-B-16, frames=16 | ucf101 | top1 | 60.0 ± 0.0 | 80.0 | -20.0 | 3 |" in markdown


def test_few_shot_cells_per_dataset_and_k(tmp_path, capsys):
    for shots, top1 in ((2, 0.5), (16, 0.7)):
        write_run(
            tmp_path, f"k{shots}", "ucf101", {"name": "few_shot", "shots": shots}, {"all_classes": {"top1": top1}}
        )
    assert main(["report", str(tmp_path), "--table", "4", "--out", str(tmp_path / "o")]) == 0
    markdown = (tmp_path / "o" / "table4.md").read_text()
    assert "| backbone=ViT-B-16, frames=8 | ucf101 | K=2 | 50.0 | 84.7 | -34.7 | 1 |" in markdown
    assert "| backbone=ViT-B-16, frames=8 | ucf101 | K=16 | 70.0 | 92.8 | -22.8 | 1 |" in markdown


def test_ablation_rows_are_told_apart_by_their_switches(tmp_path, capsys):
    for name, tvp, motion in (("a", "tvp-off", "no-motion"), ("b", "tvp-deep", "motion")):
        run = fake_run(tmp_path, name, "ucf101", 0, 0.9, 0.7, tvp=tvp, motion=motion)
        data = json.loads((run / "results.json").read_text())
        data["config"]["protocol"] = {"name": "base2novel", "variant": "all_base_samples"}
        (run / "results.json").write_text(json.dumps(data))
    assert main(["report", str(tmp_path), "--table", "5", "--out", str(tmp_path / "o")]) == 0
    markdown = (tmp_path / "o" / "table5.md").read_text()
    assert "| backbone=ViT-B-16, frames=8, tvp=off, motion=False | ucf101 | base | 90.0 | 94.4 | -4.4 | 1 |" in markdown
    assert "| backbone=ViT-B-16, frames=8, tvp=deep, motion=True | ucf101 | base | 90.0 | 95.9 | -5.9 | 1 |" in markdown
    assert "base2novel, all base samples" in markdown


def test_text_source_rows_and_the_first_layer_only_row(tmp_path, capsys):
    for name, text in (("a", "text-templates"), ("b", "text-descriptions")):
        run = fake_run(tmp_path / "t6", name, "hmdb51", 0, 0.8, 0.6, text=text)
        data = json.loads((run / "results.json").read_text())
        data["config"]["protocol"] = {"name": "base2novel", "variant": "all_base_samples"}
        (run / "results.json").write_text(json.dumps(data))
    assert main(["report", str(tmp_path / "t6"), "--table", "6", "--out", str(tmp_path / "o")]) == 0
    markdown = (tmp_path / "o" / "table6.md").read_text()
    assert "| descriptions=False | hmdb51 | base | 80.0 | 77.3 | +2.7 | 1 |" in markdown  # one run: no spread
    assert "| descriptions=True | hmdb51 | novel | 60.0 | 62.2 | -2.2 | 1 |" in markdown
    test = {f"k600_split{i}": {"top1": 0.6} for i in (1, 2, 3)}
    write_run(tmp_path / "t11", "a", "k400", {"name": "zero_shot", "variant": "three_splits"}, test, tvp="tvp-first")
    assert main(["report", str(tmp_path / "t11"), "--table", "11", "--out", str(tmp_path / "o")]) == 0
    markdown = (tmp_path / "o" / "table11.md").read_text()
    assert "| tvp=first, motion=True | k600 | top1 | 60.0 ± 0.0 | 65.6 | -5.6 | 3 |" in markdown


def test_wandb_dashboard_offline_writes_the_report_spec_and_says_how_to_publish(tmp_path, capsys, monkeypatch):
    from ezclip.report import wandb_report

    monkeypatch.setenv("HOME", str(tmp_path))  # nobody is logged in to W&B
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for name, tvp, motion, lr in (("a", "off", False, 1e-5), ("b", "deep", True, 1e-4)):
        run = fake_run(
            tmp_path / "runs", name, "ucf101", 0, 0.9, 0.7, tvp=f"tvp-{tvp}", motion=["no-motion", "motion"][motion]
        )
        data = json.loads((run / "results.json").read_text())
        data["config"].update(
            protocol={"name": "base2novel", "variant": "all_base_samples"},
            model={"tvp": tvp, "motion_loss": motion, "optimizer": {"lr": lr}},
        )
        data["cell"] = f"table5_ucf101_{tvp}_{motion}"
        (run / "results.json").write_text(json.dumps(data))
    out = tmp_path / "o"
    assert main(["report", str(tmp_path / "runs"), "--table", "5", "--out", str(out), "--wandb", "--entity", "me"]) == 0
    message = capsys.readouterr().out
    assert "offline" in message and "wandb login" in message
    spec = json.loads((out / "wandb_report.json").read_text())
    assert spec["run_filter"] == {"tags": ["table5"], "groups": ["table5_ucf101_deep_True", "table5_ucf101_off_False"]}
    kinds = [(p["kind"], p["title"]) for p in spec["panels"]]
    assert kinds[:2] == [("bar", "test/base/top1"), ("bar", "test/novel/top1")]
    assert ("line", "train/loss") in kinds and ("parallel", "hyperparameters") in kinds
    assert spec["panels"][0]["group_by"] == ["dataset.name", "model.backbone", "model.num_frames", "model.tvp",
                                             "model.motion_loss"]  # fmt: skip
    assert (
        "| backbone=ViT-B-16, frames=8, tvp=off, motion=False | ucf101 | base | 90.0 | 94.4 | 1 |"
        in (spec["results_markdown"])
    )
    parallel = next(p for p in spec["panels"] if p["kind"] == "parallel")
    assert parallel["columns"][0] == "model.optimizer.lr"  # the one swept hyperparameter
    report = wandb_report(spec)  # the wandb-workspaces objects, built offline
    (grid,) = [block for block in report.blocks if type(block).__name__ == "PanelGrid"]
    assert len(grid.panels) == len(spec["panels"]) and report.entity == "me"


def b2n_run(root: Path, name: str, variant: str | None, recipe: str = "authors", sha: str = "a" * 64, seed=1) -> Path:
    protocol = {"name": "base2novel", "seed": seed} | ({"variant": variant} if variant else {})
    run = fake_run(root, name, "hmdb51", seed, 0.8, 0.6)
    data = json.loads((run / "results.json").read_text())
    data["config"]["protocol"] = protocol
    data |= {"recipe": recipe, "train_list": {"path": "x.txt", "videos": 10, "sha256": sha}}
    (run / "results.json").write_text(json.dumps(data))
    return run


def test_tables_refuse_runs_of_another_protocol_variant(tmp_path, capsys):
    b2n_run(tmp_path / "all", "a", "all_base_samples")
    assert main(["report", str(tmp_path / "all"), "--table", "2", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "table 2 reports base-to-novel on the 16-shot lists" in err and "'all_base_samples'" in err
    b2n_run(tmp_path / "shots", "a", None)
    assert main(["report", str(tmp_path / "shots"), "--table", "3", "--out", str(tmp_path / "o")]) == 2
    assert "table 3 reports base-to-novel on all samples of the base classes" in capsys.readouterr().err


def test_cells_mix_neither_recipes_nor_training_lists(tmp_path, capsys):
    b2n_run(tmp_path / "r", "a", None, recipe="authors", seed=1)
    b2n_run(tmp_path / "r", "b", None, recipe="paper", seed=2)
    assert main(["report", str(tmp_path / "r"), "--table", "2", "--out", str(tmp_path / "o")]) == 2
    assert "runs of different recipes would be mixed (['authors', 'paper'])" in capsys.readouterr().err
    b2n_run(tmp_path / "l", "a", None, seed=1)
    b2n_run(tmp_path / "l", "b", None, seed=2, sha="b" * 64)  # another seed, another list: fine
    assert main(["report", str(tmp_path / "l"), "--table", "2", "--out", str(tmp_path / "o")]) == 0
    assert "| authors |" in (tmp_path / "o" / "table2.md").read_text()
    b2n_run(tmp_path / "l2", "a", None, seed=1)
    b2n_run(tmp_path / "l2", "b", None, seed=1, sha="b" * 64)  # the same seed on another list
    assert main(["report", str(tmp_path / "l2"), "--table", "2", "--out", str(tmp_path / "o")]) == 2
    assert "trained on different lists for the same seed/split" in capsys.readouterr().err


def test_the_papers_truncated_hm_cells_are_marked(tmp_path, capsys):
    for name, tvp, motion in (("a", "tvp-deep", "motion"),):
        run = fake_run(tmp_path, name, "k400", 0, 0.8, 0.6, tvp=tvp, motion=motion)
        data = json.loads((run / "results.json").read_text())
        data["config"]["protocol"] = {"name": "base2novel", "variant": "all_base_samples"}
        (run / "results.json").write_text(json.dumps(data))
    assert main(["report", str(tmp_path), "--table", "5", "--out", str(tmp_path / "o")]) == 0
    rows = read_csv_rows(tmp_path / "o" / "table5.csv")
    assert "the paper's HM is truncated, not rounded (2bn/(b+n) = 71.56)" in rows[("k400", "hm")]["variant"]
    assert "truncated" not in rows[("k400", "base")]["variant"]
