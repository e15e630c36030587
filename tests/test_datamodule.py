"""VideoDataModule end to end on real mp4 files, bad ones included; the no-padding samplers."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from data_helpers import (
    frame_indices,
    hanging_decoder,
    make_frame_folder,
    make_garbage,
    make_scene_video,
    make_truncated,
    make_video,
)
from ezclip.data.dataset import EvalSampler, Skipped, TrainSampler, VideoCollate, VideoDataset
from ezclip.data.decoding import SafeDecoder
from ezclip.data.lists import VideoEntry
from ezclip.data.transforms import COLOUR_PARAMS, TestTransform, TrainTransform, apply_colour, multiscale_crop_box
from ezclip.lit.datamodule import VideoDataModule

T, S = 4, 32
GOOD = [f"c{label}/v{i}.mp4 {label}" for label in range(3) for i in range(3)]  # 9 good videos
BAD = ["bad/truncated.mp4 0", "bad/garbage.mp4 1", "bad/missing.mp4 2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """root/ with 9 good videos (3 classes), 3 bad ones, a frame folder; lists and label CSVs beside it."""
    base = tmp_path_factory.mktemp("dm")
    root = base / "videos"
    for line in GOOD:
        make_video(root / line.split()[0], num_frames=16 + 4 * int(line.split()[1]), width=48, height=40)
    make_truncated(root / "c0/v0.mp4", root / "bad/truncated.mp4")
    make_garbage(root / "bad/garbage.mp4")
    make_video(root / "bad/hang.mp4", num_frames=8)
    make_frame_folder(root / "frames/f0", num_frames=12)
    (base / "labels.csv").write_text("id,name\n0,jump\n1,run\n2,swim\n")
    (base / "pair_labels.csv").write_text("id,name\n0,swim\n1,jump\n")
    (base / "descriptions.csv").write_text("id,name,description\n0,jump,Jumping up.\n1,RUN,Running fast.\n")
    (base / "train.txt").write_text("\n".join(GOOD + BAD) + "\n")
    (base / "val.txt").write_text("\r\n".join(GOOD[::2] + ["frames/f0 1"]) + "\r\n")
    (base / "pair.txt").write_text("c2/v0.mp4 0\nc0/v1.mp4 1\nbad/garbage.mp4 1\n")
    (base / "exclude.txt").write_text("bad/missing.mp4\n")
    return base


def module(data, **overrides) -> VideoDataModule:
    kwargs = dict(
        root=str(data / "videos"),
        labels=str(data / "labels.csv"),
        train_list=str(data / "train.txt"),
        val_list=str(data / "val.txt"),
        test_sets={
            "all": {"list": str(data / "train.txt")},
            "pair": {"list": str(data / "pair.txt"), "labels": str(data / "pair_labels.csv")},
        },
        num_frames=T,
        image_size=S,
        resize_size=36,
        batch_size=4,
        eval_batch_size=3,
        num_workers=0,
        decode_timeout=20,
    )
    kwargs.update(overrides)
    return VideoDataModule(**kwargs)


def drain(loader) -> tuple[list[int], list[str], list[dict]]:
    indices, skipped, batches = [], [], []
    for batch in loader:
        indices += batch["index"].tolist()
        skipped += batch["skipped"]
        assert batch["num_skipped"] == len(batch["skipped"])
        batches.append(batch)
    return indices, skipped, batches


def test_setup_names_texts_and_test_set_order(data):
    dm = module(
        data,
        text={
            "source": "descriptions",
            "descriptions": str(data / "descriptions.csv"),
            "on_missing": "templates",
            "templates": ["a video of {}.", "{}!"],
        },
    )
    dm.setup("fit")
    assert dm.test_set_names == ["all", "pair"]
    assert set(dm.class_names) == {"train", "val", "all", "pair"}
    assert dm.class_names["pair"] == ["swim", "jump"]
    assert dm.class_texts["train"] == [["Jumping up."], ["Running fast."], ["a video of swim.", "swim!"]]
    assert dm.class_texts["pair"] == [["a video of swim.", "swim!"], ["Jumping up."]]
    assert set(dm.datasets) == {"train", "val"}
    with pytest.raises(RuntimeError, match="setup"):
        dm.test_dataloader()


def test_train_loader_replaces_bad_videos_so_every_batch_is_full(data, caplog):
    caplog.set_level(logging.WARNING, logger="ezclip.data.dataset")
    dm = module(data)
    dm.setup("fit")
    indices, skipped, batches = drain(dm.train_dataloader())
    assert len(batches) == 12 // 4  # drop_last, 12 listed
    for batch in batches:
        # full batches: DDP ranks step together even when a video cannot be read
        assert batch["video"].shape == (4, T, 3, S, S) and batch["video"].dtype == torch.uint8
        assert batch["label"].dtype == torch.long and batch["label"].shape == (4,)
    assert set(indices) <= set(range(9)) and len(indices) == 12  # only good videos, 3 of them drawn twice
    assert {p.split("/")[-1] for p in skipped} == {"garbage.mp4", "missing.mp4", "truncated.mp4"}
    assert caplog.text.count("skipping unreadable video") <= 3
    again, _, _ = drain(dm.train_dataloader())
    assert again == indices  # the replacements are seeded: the same epoch draws the same ones
    dm.teardown()


def test_eval_loaders_with_workers_see_every_good_video_once(data):
    dm = module(data, num_workers=2, n_clips=2, n_crops=3)
    dm.setup("test")
    all_loader, pair_loader = dm.test_dataloader()
    indices, skipped, batches = drain(all_loader)
    assert sorted(indices) == list(range(9)) and len(skipped) == 3
    for batch in batches:
        assert batch["video"].shape == (len(batch["index"]), 6, T, 3, S, S)
    indices, skipped, _ = drain(pair_loader)
    assert sorted(indices) == [0, 1] and len(skipped) == 1


def test_eval_views_are_clip_major_and_validation_has_one_view(data):
    dm = module(data, n_clips=2, n_crops=3, image_size=S, resize_size=S)
    dm.setup()
    video = dm.datasets["all"][0]["video"]  # c0/v0: 16 frames, T=4 -> clips at [1,5,9,13], [3,7,11,15]
    assert video.shape == (6, T, 3, S, S)
    views = [frame_indices(v.numpy()) for v in video]
    assert views[0] == views[1] == views[2] == [1, 5, 9, 13]
    assert views[3] == views[5] == [3, 7, 11, 15]
    _, skipped, batches = drain(dm.val_dataloader())
    assert not skipped and sum(len(b["index"]) for b in batches) == 6  # includes the frame folder
    assert all(b["video"].shape[1] == 1 for b in batches)


def test_training_is_reproducible_and_changes_with_the_epoch(data):
    def first(epoch: int, workers: int):
        dm = module(data, num_workers=workers, train_list=str(data / "val.txt"), batch_size=2)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        batch = next(iter(loader))
        dm.teardown()
        return batch

    a, b, c = first(0, 0), first(0, 2), first(1, 0)
    assert torch.equal(a["index"], b["index"]) and torch.equal(a["video"], b["video"])
    assert torch.equal(a["colour"], b["colour"]) and a["colour"].shape == (2, COLOUR_PARAMS)
    assert not torch.equal(a["video"], c["video"])


def test_training_batches_carry_colour_parameters_that_the_device_applies(data):
    dm = module(data, color_jitter=1.0, grayscale=0.0)
    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    val = next(iter(dm.val_dataloader()))
    assert "colour" not in val  # evaluation is never colour-augmented
    assert (train["colour"][:, 0] == 1).all()
    jittered = apply_colour(train["video"], train["colour"])
    assert jittered.shape == train["video"].shape and not torch.equal(jittered, train["video"])


def test_exclusions_are_counted(data):
    dm = module(data, exclude=str(data / "exclude.txt"))
    dm.setup("fit")
    assert dm.num_excluded == {"train": 1, "val": 0}
    assert len(dm.datasets["train"]) == 11


def test_a_hanging_decoder_is_skipped_within_the_timeout(data):
    (data / "hang.txt").write_text("c0/v0.mp4 0\nbad/hang.mp4 1\nc1/v0.mp4 1\n")
    for workers in (0, 2):
        dm = module(
            data,
            test_sets={"h": {"list": str(data / "hang.txt")}},
            num_workers=workers,
            decode_fn=hanging_decoder if workers == 0 else "data_helpers:hanging_decoder",
            decode_timeout=2.0,
        )
        dm.setup("test")
        start = time.monotonic()
        indices, skipped, _ = drain(dm.test_dataloader()[0])
        assert time.monotonic() - start < 15
        assert sorted(indices) == [0, 2] and [p.split("/")[-1] for p in skipped] == ["hang.mp4"]
        dm.teardown()


def test_all_failed_batch_has_the_right_rank():
    collate = VideoCollate((2, T, 3, S, S))
    batch = collate([Skipped("x.mp4", "no such file", 0), Skipped("y.mp4", "garbage", 1)])
    assert batch["video"].shape == (0, 2, T, 3, S, S) and batch["video"].dtype == torch.uint8
    assert batch["label"].shape == (0,) and batch["num_skipped"] == 2 and batch["skipped"] == ["x.mp4", "y.mp4"]


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("size", [1, 7, 10, 11])
def test_eval_sampler_splits_without_padding(size, world):
    parts = [list(EvalSampler(size, rank=r, world=world)) for r in range(world)]
    assert sorted(i for part in parts for i in part) == list(range(size))
    assert [len(EvalSampler(size, rank=r, world=world)) for r in range(world)] == [len(p) for p in parts]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_train_sampler_equal_disjoint_shards_reshuffled_per_epoch(world):
    samplers = [TrainSampler(11, seed=3, rank=r, world=world) for r in range(world)]
    parts = [[i for i, epoch in s] for s in samplers]
    assert all(len(p) == 11 // world == len(s) for p, s in zip(parts, samplers, strict=True))
    flat = [i for p in parts for i in p]
    assert len(set(flat)) == len(flat)
    samplers[0].set_epoch(1)
    keys = list(samplers[0])
    assert all(epoch == 1 for _, epoch in keys) and [i for i, _ in keys] != parts[0]


def test_lightning_sets_the_epoch_and_keeps_our_samplers(data, tmp_path):
    import lightning as L

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))
            self.train_videos, self.val_indices = [], []

        def training_step(self, batch, batch_idx):
            self.train_videos.append((self.current_epoch, batch["video"][:, :, 0].float().mean().item()))
            return self.weight * batch["video"].float().mean()

        def validation_step(self, batch, batch_idx):
            self.val_indices += batch["index"].tolist()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = module(data, train_list=str(data / "val.txt"), batch_size=2)
    probe = Probe()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(probe, datamodule=dm)
    assert isinstance(trainer.train_dataloader.sampler, TrainSampler)
    assert trainer.train_dataloader.sampler.epoch == 1  # Lightning called set_epoch
    epochs = [[v for e, v in probe.train_videos if e == k] for k in (0, 1)]
    assert len(epochs[0]) == len(epochs[1]) == 3 and epochs[0] != epochs[1]
    assert sorted(probe.val_indices) == sorted(list(range(6)) * 2)  # every val video once per epoch


def _ddp_samplers(rank: int, world: int, size: int, port: int, out_dir: str) -> None:
    """One rank of a gloo process group: record what the samplers give it without explicit rank/world."""
    import json

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        keys = {"eval": list(EvalSampler(size)), "train": [i for i, _ in TrainSampler(size, seed=1)]}
        (Path(out_dir) / f"{rank}.json").write_text(json.dumps(keys))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_samplers_read_rank_and_world_from_the_process_group(tmp_path):
    import json
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_samplers, args=(2, 7, port, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["eval"] == [0, 2, 4, 6] and ranks[1]["eval"] == [1, 3, 5]
    assert len(ranks[0]["train"]) == len(ranks[1]["train"]) == 3
    assert not set(ranks[0]["train"]) & set(ranks[1]["train"])


def test_a_test_set_from_another_dataset_has_its_own_root_labels_and_texts(data, tmp_path):
    other = tmp_path / "other"
    make_video(other / "clips" / "a.mp4", num_frames=10, width=40, height=40)
    make_video(other / "clips" / "b.mp4", num_frames=10, width=40, height=40)
    (other / "labels.csv").write_text("id,name\n0,dive\n1,surf\n")
    (other / "test.txt").write_text("clips/a.mp4 0\nclips/b.mp4 1\n")
    dm = module(
        data,
        test_sets={
            "transfer": {
                "list": str(other / "test.txt"),
                "labels": str(other / "labels.csv"),
                "root": str(other),
                "text": {"source": "templates", "templates": ["a clip of {}"]},
            }
        },
        text={"source": "names"},
    )
    dm.setup("test")
    assert dm.class_texts["transfer"] == [["a clip of dive"], ["a clip of surf"]]
    assert dm.class_texts["train"] == [["jump"], ["run"], ["swim"]]
    indices, skipped, _ = drain(dm.test_dataloader()[0])
    assert sorted(indices) == [0, 1] and skipped == []
    with pytest.raises(ValueError, match="unknown key"):
        module(data, test_sets={"x": {"list": "a.txt", "videos": "b"}})


def test_each_split_decodes_at_the_size_its_transform_needs(data):
    dm = module(data, allow_images=True)
    dm.setup("fit")
    # Training: the smallest crop (0.66 of the short side) must still be >= S=32 -> 49; evaluation: resize_size.
    assert dm.datasets["train"].decoder.options == {"short_side": 49, "allow_images": True}
    assert dm.datasets["val"].decoder.options == {"short_side": 36, "allow_images": True}
    dm.setup("test")
    assert dm.datasets["pair"].decoder is dm.datasets["val"].decoder and len(dm.decoders) == 2
    dm.teardown()


def test_decoding_at_the_transform_size_gives_the_full_size_pipelines_frames(tmp_path):
    """Evaluation: identical frames. Training: the same crops up to the rounding of the random crop box to
    the decoded pixel grid instead of the source's (its sides and corner move by less than two decoded
    pixels, 1.7 at most over 2,000 draws)."""
    root = tmp_path / "videos"
    make_scene_video(root / "scene.mp4", num_frames=12, width=480, height=360)
    entries = [VideoEntry("scene.mp4", 0)]
    full = SafeDecoder(timeout=0)

    def differences(transform) -> list[float]:
        small = SafeDecoder(timeout=0, short_side=transform.decode_short_side)
        views = [[VideoDataset(str(root), entries, T, transform, d, n_clips=2)[(0, e)]["video"] for d in (small, full)]
                 for e in range(8)]  # fmt: skip
        assert all(a.shape == b.shape for a, b in views)
        return [float((a.float() - b.float()).abs().mean()) for a, b in views]

    test = TestTransform(image_size=64, resize_size=72, n_crops=3)
    assert test.decode_short_side == 72 and max(differences(test)) < 0.5  # 72 x 96 instead of 360 x 480
    train = TrainTransform(image_size=64)
    assert train.decode_short_side == 97
    assert sum(differences(train)) / 8 < 6  # measured 4.4 on this scene (0.5-10.4 per clip)
    for epoch in range(8):
        small_box = multiscale_crop_box(97, 129, train.scales, np.random.default_rng([0, epoch, 0, 1]))
        full_box = multiscale_crop_box(360, 480, train.scales, np.random.default_rng([0, epoch, 0, 1]))
        scale = 360 / 97
        assert all(abs(a * scale - b) < 2 * scale for a, b in zip(small_box, full_box, strict=True))


def test_training_frames_can_be_each_segments_middle_frame(data):
    from ezclip.data.sampling import sample_test

    plain = {"color_jitter": 0.0, "grayscale": 0.0, "batch_size": 3}  # colours carry the frame index
    middle = module(data, train_sampling="middle", **plain)
    middle.setup("fit")
    dataset = middle.datasets["train"]
    for epoch in (0, 1):
        item = dataset[(0, epoch)]  # c0/v0.mp4: 16 frames
        assert frame_indices(item["video"]) == sample_test(16, T, 1)[0].tolist()
    randomized = module(data, **plain)
    randomized.setup("fit")
    drawn = {tuple(frame_indices(randomized.datasets["train"][(0, epoch)]["video"])) for epoch in range(4)}
    assert len(drawn) > 1
    with pytest.raises(ValueError, match="train_sampling"):
        module(data, train_sampling="first").setup("fit")
