"""The paper's protocols on a fake data tree laid out exactly as fetch-splits and the docs say.

Every pinned file of resources.tsv is written (tiny: 3 classes per label file, 4 lines per list),
the lists point at 2 real mp4 files per dataset, and one listed video is missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from data_helpers import make_video
from ezclip.cli import main
from ezclip.prep.splits import read_resources
from helpers import TINY

CLASSES = ["brush hair", "cartwheel", "dive"]
DATASETS = {"k400": "k400", "k600": "k600", "hmdb51": "hmdb51", "ucf101": "ucf101", "ssv2": "ssv2"}
PROTOCOLS = [
    ("k400", "zero_shot"),
    *[(d, "base2novel") for d in ("k400", "hmdb51", "ucf101", "ssv2")],
    *[(d, "few_shot") for d in ("hmdb51", "ucf101", "ssv2")],
    *[(d, "base2novel_all") for d in ("k400", "ssv2")],
    ("k400", "zero_shot_authors"),
    *[(d, "fully_supervised") for d in ("ucf101", "ssv2")],
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    for resource in read_resources():
        path = data / "splits" / resource.relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if "GPT_discription" in str(path):
            rows = [f'{i},{name},"\n\n{name} is an action performed by humans."' for i, name in enumerate(CLASSES)]
            path.write_text("SNo,Class Name,GPT3 discription\n" + "\n".join(rows) + "\n")
        elif path.suffix == ".csv":
            path.write_text("id,name\n" + "".join(f"{i},{name}\n" for i, name in enumerate(CLASSES)))
        else:
            path.write_text("a.mp4 0\nb.mp4 1\na.mp4 2\nb.mp4 1\n")
    # Converted official lists (protocol=fully_supervised): split files for UCF101, one pair for SSv2.
    for dataset, (train, test) in {"ucf101": ("train1.txt", "test1.txt"), "ssv2": ("train.txt", "val.txt")}.items():
        lists = data / dataset / "lists"
        lists.mkdir(parents=True)
        (lists / "labels.csv").write_text("id,name\n" + "".join(f"{i},{name}\n" for i, name in enumerate(CLASSES)))
        (lists / train).write_text("a.mp4 0\nb.mp4 1\na.mp4 2\nb.mp4 1\n")
        (lists / test).write_text("b.mp4 0\na.mp4 1\nb.mp4 2\na.mp4 1\n")
    # The authors' K600 list as `ezclip data convert k600-authors` writes it (protocol=zero_shot_authors).
    (data / "k600" / "lists").mkdir(parents=True)
    (data / "k600" / "lists" / "test_exclusive.txt").write_text("a.mp4 0\nb.mp4 1\na.mp4 2\nb.mp4 1\n")
    for dataset in DATASETS:
        for name in ("a.mp4", "b.mp4"):
            make_video(data / dataset / "videos" / name, num_frames=12, width=40, height=40)
    return data


def summary(data_dir: Path, capsys, *overrides: str) -> tuple[int, dict]:
    # The fake lists hold 4 videos, fewer than the configs' batches: a batch of 1 keeps them trainable.
    code = main(["data", "summary", f"paths.data_dir={data_dir}", "data.batch_size=1", *overrides])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("dataset, protocol", PROTOCOLS)
def test_summary_of_every_protocol(data_dir, capsys, dataset, protocol):
    code, out = summary(data_dir, capsys, f"data={dataset}", f"protocol={protocol}")
    assert code == 0, out
    expected = {
        "zero_shot": {"train"} | {f"test/{d}_split{n}" for d in ("hmdb51", "ucf101", "k600") for n in (1, 2, 3)},
        "base2novel": {"train", "test/base", "test/novel"},
        "base2novel_all": {"train", "test/base", "test/novel"},
        "few_shot": {"train", "test/all_classes"},
        "zero_shot_authors": {"train", "test/hmdb51_split1", "test/ucf101_split1", "test/k600"},
        "fully_supervised": {"train", "test/test"},
    }[protocol]
    assert set(out["splits"]) == expected
    for split in out["splits"].values():
        assert (split["videos"], split["classes"], split["missing"]) == (4, 3, 0)
    if protocol == "zero_shot":  # each test set reads its own dataset's videos
        assert out["splits"]["test/hmdb51_split2"]["root"].endswith("hmdb51/videos")
        assert out["splits"]["test/k600_split3"]["list"].endswith("ZS_split3_K600_eval.txt")


def test_authors_zero_shot_variant_on_their_converted_k600_list(data_dir, tmp_path, capsys):
    # Their list names clips by absolute paths on their cluster, with a frame count before the label.
    authors_list = tmp_path / "test_600_exclusive.txt"
    authors_list.write_text("/cluster/K_600_exclusive/a.mp4 250 2\n/cluster/K_600_exclusive/b.mp4 300 0\n")
    labels = data_dir / "splits/Shahzadnit/EZ-CLIP/lists/kinetics_600_labels_exclusive.csv"
    lists = tmp_path / "lists"
    argv = ["data", "convert", "k600-authors", "--annotations", str(authors_list), "--labels", str(labels)]
    assert main([*argv, "--out", str(lists), "--video-root", str(data_dir / "k600" / "videos")]) == 0
    assert json.loads(capsys.readouterr().out)["not_found_under_video_root"] == 0
    converted = f"data.test_sets.k600.list={lists / 'test_exclusive.txt'}"
    code, out = summary(data_dir, capsys, "protocol=zero_shot_authors", converted)
    assert code == 0, out
    assert out["protocol"] == {"name": "zero_shot", "variant": "authors_split1_k600_232"}
    assert set(out["splits"]) == {"train", "test/hmdb51_split1", "test/ucf101_split1", "test/k600"}
    k600 = out["splits"]["test/k600"]
    assert (k600["videos"], k600["classes"], k600["missing"]) == (2, 3, 0)
    assert k600["descriptions"].endswith("kinetics_600_labels_exclusive_discription_new.csv")


def test_summary_names_classes_without_a_description(data_dir, capsys, tmp_path):
    descriptions = tmp_path / "descriptions.csv"
    descriptions.write_text('SNo,Class Name,GPT3 discription\n1,brush hair,"Brushing hair is..."\n')
    code, out = summary(data_dir, capsys, "data=hmdb51", "protocol=few_shot", f"data.text.descriptions={descriptions}")
    assert code == 1
    assert "no description for 2 of 3 classes: ['cartwheel', 'dive']" in out["splits"]["train"]["error"]
    code, out = summary(data_dir, capsys, "data=hmdb51", "protocol=few_shot", "data.text.source=templates")
    assert code == 0 and out["splits"]["train"]["text"] == "templates"


def test_summary_flags_empty_lists_and_lists_shorter_than_a_batch(data_dir, capsys, tmp_path):
    code, out = summary(data_dir, capsys, "data=hmdb51", "protocol=few_shot", "data.batch_size=5")
    assert code == 1 and "fewer than one batch (5)" in out["splits"]["train"]["problems"][0]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, out = summary(
        data_dir, capsys, "data=hmdb51", "protocol=few_shot", f"data.test_sets.all_classes.list={empty}"
    )
    assert code == 1 and out["splits"]["test/all_classes"]["problems"] == ["the list is empty"]


def test_base2novel_seed_and_few_shot_shots_pick_their_files(data_dir, capsys):
    _, out = summary(data_dir, capsys, "data=ucf101", "protocol=base2novel", "protocol.seed=3")
    assert out["splits"]["train"]["list"].endswith("ucf_splits/fs_base_s3_train.txt")
    assert out["splits"]["train"]["labels"].endswith("ucf_101_base_labels.csv")
    assert out["splits"]["test/novel"]["labels"].endswith("ucf_101_novel_labels.csv")
    _, out = summary(data_dir, capsys, "data=ssv2", "protocol=few_shot", "protocol.shots=16")
    assert out["splits"]["train"]["list"].endswith("ssv2_splits/train1_few_shot_16.txt")
    assert out["splits"]["test/all_classes"]["list"].endswith("ssv2_splits/validation.txt")


def test_summary_counts_missing_videos_and_missing_files(data_dir, capsys, tmp_path):
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", num_frames=8, width=40, height=40)
    code, out = summary(data_dir, capsys, "data=hmdb51", "protocol=few_shot", f"data.root={videos}")
    assert code == 1
    assert out["splits"]["train"]["missing"] == 2 and out["splits"]["train"]["missing_examples"] == ["b.mp4"]
    code, out = summary(tmp_path / "nowhere", capsys, "data=ucf101", "protocol=base2novel")
    assert code == 1 and "No such file" in out["splits"]["train"]["error"]


def test_ssv2_never_flips(data_dir):
    from hydra import compose, initialize_config_dir

    from ezclip.runs.config import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        assert compose("train", overrides=["data=ssv2"]).data.horizontal_flip is False


@pytest.mark.parametrize("dataset, protocol", PROTOCOLS)
def test_fast_dev_run_of_a_protocol(data_dir, tmp_path, dataset, protocol):
    from hydra import compose, initialize_config_dir

    from ezclip.runs.config import config_dir
    from ezclip.train import train

    # The authors' recipe wherever their code has a row for the protocol; with their 16 templates once.
    recipe = [] if protocol == "fully_supervised" else ["recipe=authors"]
    templates = ["data.text.source=templates"] if (dataset, protocol) == ("hmdb51", "few_shot") else []

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"data={dataset}", f"protocol={protocol}", f"paths.data_dir={data_dir}", f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path}", f"model.backbone={TINY}", "model.pretrained=null",
                "model.force_quick_gelu=false", "data.image_size=32", "data.resize_size=32", "data.num_frames=4",
                "data.num_workers=0", "data.batch_size=2", "+trainer.fast_dev_run=true", "callbacks=none",
                "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", *recipe, *templates,
            ],
        )  # fmt: skip
    train(cfg)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["recipe"] == ("authors" if recipe else "custom")
    # A variant keeps its protocol's name and is told apart by its variant.
    name, variant = {"zero_shot_authors": ("zero_shot", "authors_split1_k600_232"),
                     "base2novel_all": ("base2novel", "all_base_samples")}.get(protocol, (protocol, None))  # fmt: skip
    assert results["config"]["protocol"]["name"] == name
    assert results["factors"]["protocol"].startswith(f"{name}-{variant}" if variant else name)
    expected_sets = {"zero_shot": 9, "zero_shot_authors": 3, "few_shot": 1, "fully_supervised": 1}.get(protocol, 2)
    assert len(results["test"]) == expected_sets
    assert all(r["num_videos"] == 4 and r["num_skipped"] == 0 for r in results["test"].values())


def test_data_check_finds_unreadable_videos_and_its_exclusions_are_honoured(data_dir, tmp_path, capsys):
    from data_helpers import make_garbage, make_truncated

    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", num_frames=12, width=40, height=40)
    make_truncated(videos / "a.mp4", videos / "b.mp4")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "labels.csv").write_text("id,name\n0,brush hair\n1,dive\n")
    make_garbage(videos / "c.mp4")
    (lists / "train1.txt").write_text("a.mp4 0\nb.mp4 1\nc.mp4 1\nmissing.mp4 0\n")
    (lists / "test1.txt").write_text("a.mp4 0\n")
    overrides = ["data=ucf101", "protocol=fully_supervised", f"data.root={videos}",
                 f"dataset.files.converted_dir={lists}", f"paths.data_dir={data_dir}", "data.num_frames=4"]  # fmt: skip
    exclusions = tmp_path / "exclude.txt"
    code = main(
        ["data", "check", *overrides, "--workers", "2", "--timeout", "20", "--write-exclusions", str(exclusions)]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["unreadable"] == 3
    assert {bad["path"] for bad in out["splits"]["train"]["unreadable"]} == {"b.mp4", "c.mp4", "missing.mp4"}
    assert out["splits"]["test"]["unreadable"] == []
    assert exclusions.read_text().split() == ["b.mp4", "c.mp4", "missing.mp4"]
    code, out = summary(data_dir, capsys, *overrides[:-1], f"data.exclude={exclusions}")
    assert code == 0  # the listed-but-missing video is excluded too


def test_reproduce_runs_a_table_end_to_end_on_the_fake_layout(data_dir, tmp_path, monkeypatch):
    """`python -m ezclip.reproduce 11`: both of Table 11's sweeps as real Hydra multiruns, then its report."""
    import subprocess
    import sys

    from helpers import TINY_CONFIG

    config = tmp_path / "ezclip-test-reproduce.json"
    config.write_text(json.dumps(TINY_CONFIG))
    shrink = [
        f"paths.data_dir={data_dir}", f"model.backbone={config}", "model.pretrained=null",
        "model.force_quick_gelu=false", "model.grad_checkpointing=false", "trainer=cpu", "data.image_size=32",
        "data.resize_size=32", "data.num_frames=4", "data.num_workers=0", "data.batch_size=2",
        "+trainer.fast_dev_run=true", "callbacks=none", "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    env = {**os.environ, "EZCLIP_OUTPUTS": str(tmp_path / "outputs")}
    command = [sys.executable, "-m", "ezclip.reproduce", "11", *shrink]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "table11").iterdir()
    assert len(list(sweep.rglob("results.json"))) == 5
    rows = {line.split(" | ")[0] for line in (sweep / "report" / "table11.md").read_text().splitlines()[4:-2]}
    assert rows == {f"| tvp={t}, motion={m}" for t, m in
                    (("off", False), ("off", True), ("deep", False), ("deep", True), ("first", True))}  # fmt: skip


def test_reproductions_default_to_the_authors_recipe_and_name_the_papers_text_as_the_other():
    from omegaconf import OmegaConf

    from ezclip.runs.config import compose

    def settings(*overrides: str) -> tuple:
        cfg = OmegaConf.to_container(compose("train", list(overrides)), resolve=True)
        model, data = cfg["model"], cfg["data"]
        return (
            cfg["recipe"]["name"], model["optimizer"]["lr"], model["optimizer"]["eps"], data["batch_size"],
            cfg["trainer"]["max_epochs"], data["train_sampling"], model["contrastive"],
            model["scheduler"]["warmup_epochs"], model["decay_1d"], model["eval_text"],
        )  # fmt: skip

    few_shot = ["experiment=table4_fs_hmdb51_b16", "protocol.shots=2"]
    assert settings(*few_shot) == ("authors", 1e-4, 1e-8, 10, 180, "middle", "inbatch_kl", 5, True, "softmax")
    assert settings(*few_shot, "recipe=paper") == (
        "paper",
        5e-6,
        1e-6,
        70,
        50,
        "random",
        "ce",
        None,
        False,
        "embedding",
    )
    assert settings("experiment=table1_zs_b16_t8")[1:6] == (1e-4, 1e-8, 80, 150, "random")
    assert settings("experiment=table2_ssv2_b16", "protocol.seed=3")[1:6] == (1e-5, 1e-8, 50, 100, "middle")
    assert settings("experiment=table4_fs_ssv2_b16")[3:5] == (10, 180)  # SSv2 few-shot borrows HMDB51's config
    assert settings("experiment=table1_zs_b16_t16", "recipe=paper")[3] == 70
    templates = compose("train", ["experiment=table13_fs_ucf101_b16", "data.text.source=templates"]).data.text.templates
    assert len(templates) == 16 and templates[0] == "a photo of action {}"
