"""Lightning DataModule for list-based video datasets (train, val and any number of named test sets).

Batches (uint8 video; convert on the device with ``ezclip.data.transforms.normalize_video``):
    train: ``{"video": (B, T, 3, S, S), "colour": (B, COLOUR_PARAMS), "label": (B,), "index": (B,),
        "num_skipped": int, "skipped": [path]}``, cropped and flipped; the colour augmentation is
        applied on the device (``ezclip.data.transforms.apply_colour``)
    val/test: ``{"video": (B, V, T, 3, S, S), ...}`` with V = n_clips * n_crops views for test sets and
        V = 1 (one centre clip, centre crop) for validation, which runs every epoch and must stay cheap.
Unreadable videos: in evaluation dropped from their batch and counted (B can be 0); in training
replaced by another video of the list (and reported), so every training batch is full and DDP
ranks step together.

Distributed: the samplers are ``DistributedSampler`` subclasses built from the process group, so
Lightning keeps them with or without ``use_distributed_sampler``: training gives every rank the
same number of batches; evaluation gives rank r the videos r::world, each video exactly once
(ranks may differ by one video; sum ``num_seen`` across ranks, never pad).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from ezclip.data.dataset import EvalSampler, TrainSampler, VideoCollate, VideoDataset
from ezclip.data.decoding import SafeDecoder, decode_video, import_function
from ezclip.data.lists import apply_exclusions, read_exclusions, read_labels, read_list, split_validation
from ezclip.data.text import class_texts
from ezclip.data.transforms import TestTransform, TrainTransform

log = logging.getLogger(__name__)


class VideoDataModule(L.LightningDataModule):
    """Videos listed as ``<relative path> <label>`` under ``root``, with label CSVs ``id,name``.

    Args:
        root: folder the list paths are relative to.
        labels: default label CSV for every split.
        train_list, val_list: list files (None: no such split).
        test_sets: ``{name: {"list": path, "labels": optional path}}`` (or ``{name: path}``), in order.
        train_labels, val_labels: label CSVs overriding ``labels`` for those splits.
        text: ``{"source": "names"|"templates"|"descriptions", "templates": [...], "descriptions": path,
            "on_missing": "error"|"templates"}`` (see ``ezclip.data.text.class_texts``).
        num_frames: T. image_size: S. resize_size: short side before the test crops.
        batch_size: the GLOBAL training batch (all devices and accumulated steps together, as papers state
            it); each device loads batch_size / (devices x nodes x accumulate_grad_batches) per step.
        eval_batch_size: evaluation batch per device (default: the per-device training batch).
        num_workers: DataLoader workers (0: load in the main process).
        train_scales, horizontal_flip, color_jitter, grayscale: training augmentation (flip off for SSv2).
        n_clips, n_crops: test views (temporal x spatial).
        decode_timeout: seconds per video before the decoder is killed and the video skipped (<= 0: no guard).
        allow_images: read a still image file (PNG, JPEG, GIF, BMP, WebP) as a one-frame video; by default it
            is an unreadable video (skipped and counted), since a list naming one is usually a mistake.
        exclude: file of relative video paths to drop from every list.
        val_from_train: carve the validation split out of the training list (when there is no val_list):
            a fraction of each class (< 1) or a number per class (>= 1), seeded by `seed`, disjoint from
            training; model selection and sweeps then never read a test set.
        train_sampling: training frames: ``random`` in each TSN segment, or each segment's ``middle`` frame.
        seed: base of the training order and augmentation (with the epoch and the video index).
        pin_memory, persistent_workers: passed to the DataLoaders (persistent only with workers).
        decode_fn: module-level ``(path, sampler, **options) -> uint8 (N, H, W, 3)`` or its
            ``"module:function"`` name (default ``decode_video``; tests inject a hanging one). Its options:
            ``allow_images`` and ``short_side``, the size each split's transform needs (training: the side
            from which every multi-scale crop is scaled down; evaluation: ``resize_size``), so frames are
            scaled down in the decoder's helper, before they cross its pipe.
    After ``setup``: ``class_names``/``class_texts`` keyed ``"train"``, ``"val"`` and each test-set name,
    ``test_set_names`` in config order, ``num_excluded`` per split, and the datasets of the stage.
    """

    def __init__(
        self,
        root: str,
        labels: str,
        train_list: str | None = None,
        val_list: str | None = None,
        test_sets: dict | None = None,
        train_labels: str | None = None,
        val_labels: str | None = None,
        text: dict | None = None,
        num_frames: int = 8,
        image_size: int = 224,
        resize_size: int = 256,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        train_scales=(1.0, 0.875, 0.75, 0.66),
        horizontal_flip: bool = True,
        color_jitter: float = 0.8,
        grayscale: float = 0.2,
        n_clips: int = 1,
        n_crops: int = 1,
        decode_timeout: float = 30.0,
        allow_images: bool = False,
        exclude: str | None = None,
        val_from_train: float | None = None,
        train_sampling: str = "random",
        seed: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        decode_fn: Callable | str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["decode_fn"])
        if val_from_train and val_list:
            raise ValueError("choose data.val_list or data.val_from_train, not both")
        self.root = str(root)
        self.text = dict(text or {"source": "names"})
        self.test_sets = {str(name): _test_spec(name, spec) for name, spec in (test_sets or {}).items()}
        self.test_set_names: list[str] = list(self.test_sets)
        self.train_transform = TrainTransform(
            image_size=image_size,
            scales=tuple(float(s) for s in train_scales),
            horizontal_flip=horizontal_flip,
            color_jitter=color_jitter,
            grayscale=grayscale,
        )
        if isinstance(decode_fn, str):
            decode_fn = import_function(decode_fn)
        self.decode_fn = decode_fn or decode_video
        self.decoders: dict[int, SafeDecoder] = {}  # by decode short side: one for training, one for evaluation
        self.class_names: dict[str, list[str]] = {}
        self.class_texts: dict[str, list[list[str]]] = {}
        self.num_excluded: dict[str, int] = {}
        self.carved_validation: list[str] = []  # the list paths val_from_train held out
        self.datasets: dict[str, VideoDataset] = {}

    # -- splits ---------------------------------------------------------------------------------

    def splits(self) -> dict[str, dict[str, Any]]:
        """Every configured split: name -> {list, labels, root, text}, in the order train, val, tests.

        A test set may come from another dataset (zero-shot transfer): its own `root` (videos),
        `labels` and `text` (class-text source) replace the data module's.
        """
        hp = self.hparams
        splits = {}
        if hp.train_list:
            splits["train"] = {"list": hp.train_list, "labels": hp.train_labels or hp.labels}
        if hp.val_list:
            splits["val"] = {"list": hp.val_list, "labels": hp.val_labels or hp.labels}
        elif hp.val_from_train and hp.train_list:
            splits["val"] = dict(splits["train"])  # carved out of the training list (_dataset)
        for name, spec in self.test_sets.items():
            splits[name] = {**spec, "labels": spec["labels"] or hp.labels}
        for spec in splits.values():
            spec["root"] = spec.get("root") or self.root
            spec["text"] = {**self.text, **(spec.get("text") or {})}
        return splits

    def setup(self, stage: str | None = None) -> None:
        """Read labels and texts for every split, lists and datasets for ``stage`` (None: all)."""
        splits = self.splits()
        for name, spec in splits.items():
            if name not in self.class_names:
                self.class_names[name] = read_labels(spec["labels"])
                text = spec["text"]
                self.class_texts[name] = class_texts(
                    self.class_names[name],
                    source=text.get("source", "names"),
                    templates=text.get("templates"),
                    descriptions_csv=text.get("descriptions"),
                    on_missing=text.get("on_missing", "error"),
                )
        wanted = {
            "fit": ["train", "val"],
            "validate": ["val"],
            "test": self.test_set_names,
            "predict": self.test_set_names,
        }.get(stage, list(splits))
        for name in wanted:
            if name in splits and name not in self.datasets:
                self.datasets[name] = self._dataset(name, splits[name]["list"], splits[name]["root"])

    def _dataset(self, name: str, list_file: str, root: str) -> VideoDataset:
        hp = self.hparams
        entries = read_list(list_file, num_classes=len(self.class_names[name]))
        if hp.exclude:
            entries, self.num_excluded[name] = apply_exclusions(entries, read_exclusions(hp.exclude))
            log.info("%s: excluded %d videos listed in %s", name, self.num_excluded[name], hp.exclude)
        if hp.val_from_train and name in ("train", "val"):
            train, val = split_validation(entries, hp.val_from_train, hp.seed)
            self.carved_validation = [e.path for e in val]
            entries = train if name == "train" else val
        if name == "train":
            transform, n_clips = self.train_transform, 1
        elif name == "val":  # one view: validation runs every epoch
            transform, n_clips = TestTransform(hp.image_size, hp.resize_size, n_crops=1), 1
        else:
            transform, n_clips = TestTransform(hp.image_size, hp.resize_size, n_crops=hp.n_crops), hp.n_clips
        log.info("%s: %d videos, %d classes (%s)", name, len(entries), len(self.class_names[name]), list_file)
        decoder = self._decoder(transform)
        return VideoDataset(root, entries, hp.num_frames, transform, decoder, n_clips, hp.seed, hp.train_sampling)

    def _decoder(self, transform: TrainTransform | TestTransform) -> SafeDecoder:
        """The decoder that hands ``transform`` frames at the size it needs (shared by splits that need the same)."""
        side = transform.decode_short_side
        if side not in self.decoders:
            hp = self.hparams
            self.decoders[side] = SafeDecoder(
                self.decode_fn, timeout=hp.decode_timeout, short_side=side, allow_images=hp.allow_images
            )
        return self.decoders[side]

    # -- loaders --------------------------------------------------------------------------------

    def _loader(self, dataset: VideoDataset, sampler, batch_size: int, drop_last: bool) -> DataLoader:
        workers = int(self.hparams.num_workers)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            collate_fn=VideoCollate(dataset.video_shape),
            pin_memory=self.hparams.pin_memory,
            persistent_workers=bool(self.hparams.persistent_workers) and workers > 0,
        )

    def batch_layout(self) -> dict[str, int]:
        """How the global batch splits: {global, per_device, accumulate, world_size}."""
        trainer = self.trainer
        world = trainer.world_size if trainer is not None else 1
        accumulate = trainer.accumulate_grad_batches if trainer is not None else 1
        return {
            "global": self.hparams.batch_size,
            "per_device": device_batch(self.hparams.batch_size, world, accumulate),
            "accumulate": accumulate,
            "world_size": world,
        }

    def _eval_loader(self, name: str) -> DataLoader:
        dataset = self._require(name)
        batch_size = self.hparams.eval_batch_size or self.batch_layout()["per_device"]
        return self._loader(dataset, EvalSampler(len(dataset)), batch_size, drop_last=False)

    def _require(self, name: str) -> VideoDataset:
        if name not in self.datasets:
            raise RuntimeError(f"no '{name}' dataset: configure its list and call setup() for its stage first")
        return self.datasets[name]

    def train_dataloader(self) -> DataLoader:
        dataset = self._require("train")
        sampler = TrainSampler(len(dataset), seed=self.hparams.seed)
        return self._loader(dataset, sampler, self.batch_layout()["per_device"], drop_last=True)

    def val_dataloader(self) -> DataLoader | list:
        # No validation split (the paper's protocols have none): Lightning skips validation.
        return self._eval_loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test set, in ``test_set_names`` order."""
        return [self._eval_loader(name) for name in self.test_set_names]

    def teardown(self, stage: str | None = None) -> None:
        for decoder in self.decoders.values():
            decoder.close()


def device_batch(global_batch: int, world_size: int, accumulate: int = 1) -> int:
    """The batch one device loads per step for a global batch; an uneven split is an error naming the numbers."""
    per_device, rest = divmod(global_batch, world_size * accumulate)
    if rest or per_device < 1:
        raise ValueError(
            f"data.batch_size={global_batch} is the global batch: it must be a multiple of devices x nodes "
            f"({world_size}) x trainer.accumulate_grad_batches ({accumulate}) = {world_size * accumulate}"
        )
    return per_device


def _test_spec(name: Any, spec: Any) -> dict[str, Any]:
    """``path`` or ``{"list", "labels"?, "root"?, "text"?}`` -> a dict with all four (None: the module's)."""
    if isinstance(spec, str):
        spec = {"list": spec}
    if "list" not in spec:
        raise ValueError(f"test set {name!r} needs a 'list', got {dict(spec)}")
    unknown = set(spec) - {"list", "labels", "root", "text"}
    if unknown:
        raise ValueError(f"test set {name!r}: unknown key(s) {sorted(unknown)}; known: list, labels, root, text")
    return {"list": spec["list"], "labels": spec.get("labels"), "root": spec.get("root"), "text": spec.get("text")}
