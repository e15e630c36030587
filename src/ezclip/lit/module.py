"""EZCLIPModule: training and evaluation of EZ-CLIP with Lightning.

Batches come from `ezclip.lit.datamodule.VideoDataModule` as uint8 videos; they are converted
and normalized here, on the device. Class texts come from the datamodule (`class_texts`): each
class has one or more texts whose embeddings are averaged.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy

from ezclip.data.transforms import apply_colour, normalize_video
from ezclip.lit.optim import decay_groups
from ezclip.models import contrastive_loss, load_official_checkpoint, motion_loss
from ezclip.models.ezclip import EZCLIP, EZCLIPConfig, build_from_config

log = logging.getLogger(__name__)


def _accuracy_metrics(num_classes: int) -> MetricCollection:
    # No compute groups: torchmetrics merges metrics whose states are equal after the first update, and
    # top-5 (micro, per-class states) and mean class accuracy can be equal there; top-5 then reported
    # the mean class accuracy.
    return MetricCollection(
        {
            "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            "mean_class_acc": MulticlassAccuracy(num_classes, top_k=1, average="macro"),
        },
        compute_groups=False,
    )


class EvalSet(nn.Module):
    """The metrics and counters of one evaluation set (validation or a named test set)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.metrics = _accuracy_metrics(num_classes)
        self.num_videos = SumMetric()
        self.num_skipped = SumMetric()


class EZCLIPModule(L.LightningModule):
    """EZ-CLIP with its losses, optimizer and evaluation.

    `net`: the model's settings, the fields of `EZCLIPConfig` (`backbone`, `pretrained`,
    `num_frames`, `tvp`, `adapters`, ...); `official_checkpoint`: start from the authors' release
    instead. `contrastive` is `ce` (all classes of the training label set) or `inbatch_kl` (the
    batch's classes); `motion_loss` switches the motion loss on (weight `motion_weight`). Classes
    with several texts (templates): `train_text` = `sample` (one drawn per class, or per video for
    inbatch_kl, each step) or `mean` (their mean embedding); `eval_text` = `embedding` (the mean
    embedding) or `softmax` (the mean over texts of each text's softmax).
    """

    def __init__(
        self,
        contrastive: str = "ce",
        contrastive_weight: float = 1.0,
        motion_loss: bool = True,
        motion_weight: float = 1.0,
        central_diff: str = "abs",
        train_text: str = "sample",
        eval_text: str = "embedding",
        grad_checkpointing: bool = False,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        decay_1d: bool = False,
        save_predictions: bool = True,
        official_checkpoint: str | None = None,
        **net: Any,
    ):
        super().__init__()
        # Plain values only: optimizer/scheduler are partials, and checkpoints must load with weights_only=True.
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.make_optimizer, self.make_scheduler = optimizer, scheduler
        if contrastive not in ("ce", "inbatch_kl"):
            raise ValueError(f"model.contrastive must be 'ce' or 'inbatch_kl', got {contrastive!r}")
        config = EZCLIPConfig.from_dict(net)  # the model's settings are EZCLIPConfig's fields, nothing else
        if official_checkpoint:
            # The authors' file fixes the architecture, tvp, T and the adapters itself.
            self.net: EZCLIP = load_official_checkpoint(official_checkpoint)
            if self.net.num_frames != config.num_frames:
                raise ValueError(
                    f"{official_checkpoint} is for T={self.net.num_frames} frames, the data gives "
                    f"T={config.num_frames}: set data.num_frames={self.net.num_frames}"
                )
        else:
            self.net = build_from_config(config)
        self.net.set_grad_checkpointing(grad_checkpointing)
        # Resume checkpoints hold the trainable tensors only: the backbone comes from `pretrained`.
        self.strict_loading = False
        self.train_loss = MeanMetric()
        self.eval_sets = nn.ModuleDict()
        self.class_tokens: dict[str, torch.Tensor] = {}
        self._texts_per_class: dict[str, torch.Tensor] = {}
        self._text_cache: dict[str, torch.Tensor] = {}
        self._predictions: dict[str, list[dict[str, torch.Tensor]]] = {}
        self.test_results: dict[str, dict[str, float]] = {}
        self.skipped_paths: set[str] = set()

    # --- setup ------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        for name, texts in datamodule.class_texts.items():
            flat = [text for class_texts in texts for text in class_texts]
            counts = [len(class_texts) for class_texts in texts]
            if name != "train" and self.hparams.eval_text == "softmax" and len(set(counts)) > 1:
                raise ValueError(
                    f"model.eval_text=softmax averages over text index k, so every class of {name!r} needs the same "
                    f"number of texts; they have {sorted(set(counts))} (use eval_text=embedding)"
                )
            self.class_tokens[name] = self.net.tokenize(flat)
            self._texts_per_class[name] = torch.tensor(counts)
            if name not in self.eval_sets and name != "train":
                self.eval_sets[name] = EvalSet(len(texts)).to(self.device)

    def configure_optimizers(self):
        optimizer = self.make_optimizer(params=decay_groups(self.parameters(), self.hparams.decay_1d))
        if self.make_scheduler is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.make_scheduler(
            optimizer=optimizer, total_steps=total, steps_per_epoch=total / self.trainer.max_epochs
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # --- text -------------------------------------------------------------------------------

    def class_embeddings(self, name: str, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(C, E) class embeddings of a label set; with `labels`, those classes in that order: (B, E).

        A class with several texts (templates) gets the mean of their normalized embeddings, or, while
        training with `train_text=sample`, one of its texts drawn at random (per class, or per video
        when `labels` are given), as the authors' code trains with its 16 templates.
        """
        tokens = self.class_tokens[name].to(self.device)
        counts = self._texts_per_class[name]
        starts = torch.cumsum(counts, 0) - counts
        classes = labels.cpu() if labels is not None else torch.arange(len(counts))
        if self.training and self.hparams.train_text == "sample":
            rows = starts[classes] + (torch.rand(len(classes)) * counts[classes]).long()  # one text each
            return F.normalize(self.net.encode_text(tokens[rows.to(self.device)]), dim=-1)  # (C or B, E)
        rows = torch.cat([torch.arange(starts[c], starts[c] + counts[c]) for c in classes.tolist()])
        text = F.normalize(self.net.encode_text(tokens[rows.to(self.device)]), dim=-1)  # (sum K, E)
        return torch.stack([chunk.mean(0) for chunk in text.split(counts[classes].tolist())])  # (C or B, E)

    def text_ensemble(self, name: str) -> torch.Tensor:
        """(C, K, E) normalized embeddings of the K texts of every class of a label set (eval_text=softmax)."""
        counts = self._texts_per_class[name]
        text = F.normalize(self.net.encode_text(self.class_tokens[name].to(self.device)), dim=-1)  # (C*K, E)
        return text.view(len(counts), int(counts[0]), -1)  # (C, K, E)

    def class_probabilities(self, video_embeddings: torch.Tensor, name: str) -> torch.Tensor:
        """(N, E) video embeddings -> (N, C) class probabilities on a label set, as `eval_text` says:
        `embedding`: softmax over the classes' mean text embeddings; `softmax`: the mean over the K
        texts of the softmax each text index gives (the authors' 16-template test)."""
        texts = self._eval_texts(name)  # (C, E) or (C, K, E)
        if texts.ndim == 2:
            return self.net.similarity_logits(video_embeddings, texts).float().softmax(dim=-1)
        video = F.normalize(video_embeddings, dim=-1)
        logits = self.net.logit_scale() * torch.einsum("ne,cke->nkc", video, texts)  # (N, K, C)
        return logits.float().softmax(dim=-1).mean(dim=1)  # (N, C)

    # --- training -----------------------------------------------------------------------------

    def on_train_start(self) -> None:
        self.train_loss.reset()
        if "val" in self.eval_sets:
            self.eval_sets["val"].metrics.reset()

    def training_step(self, batch: dict[str, Any], batch_idx: int):
        self._count_skipped(batch)
        labels = batch["label"]
        if labels.numel() == 0:
            # Unreadable training videos are replaced (VideoDataset); a batch still empty means the list
            # is mostly unreadable. Skipping the step on one rank would desynchronise DDP: stop instead.
            raise RuntimeError(
                f"a training batch without one readable video ({len(batch['skipped'])} unreadable, e.g. "
                f"{batch['skipped'][:3]}): run `ezclip data check` and exclude them (data.exclude)"
            )
        video = normalize_video(apply_colour(batch["video"], batch["colour"]))  # (B, T, 3, S, S) float
        frames = self.net.encode_frames(video)  # (B, T, E)
        if self.hparams.contrastive == "ce":
            logits = self.net.similarity_logits(frames.mean(1), self.class_embeddings("train"))  # (B, C)
            contrastive = contrastive_loss(logits, labels, "ce")
        else:
            logits = self.net.similarity_logits(frames.mean(1), self.class_embeddings("train", labels))  # (B, B)
            contrastive = contrastive_loss(logits, labels, "inbatch_kl")
        loss = self.hparams.contrastive_weight * contrastive
        batch_size = labels.shape[0]
        if self.hparams.motion_loss:
            motion = motion_loss(frames, self.hparams.central_diff)
            loss = loss + self.hparams.motion_weight * motion
            self.log("train/motion", motion, batch_size=batch_size)
        self.train_loss(loss)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log("train/contrastive", contrastive, batch_size=batch_size)
        return loss

    # --- evaluation ---------------------------------------------------------------------------

    def _eval_texts(self, name: str) -> torch.Tensor:
        # Nothing trains during evaluation: encode each label set's texts once per epoch.
        if name not in self._text_cache:
            with torch.no_grad():
                ensemble = self.hparams.eval_text == "softmax" and int(self._texts_per_class[name].max()) > 1
                self._text_cache[name] = self.text_ensemble(name) if ensemble else self.class_embeddings(name)
        return self._text_cache[name]

    def on_validation_epoch_start(self) -> None:
        self._text_cache.clear()

    def on_test_epoch_start(self) -> None:
        self._text_cache.clear()
        self._predictions.clear()

    def _evaluate(self, name: str, batch: dict[str, Any]) -> None:
        self._count_skipped(batch, name)
        labels = batch["label"]
        if labels.numel() == 0:
            return
        video = batch["video"]  # (B, V, T, 3, S, S) uint8: V views per video
        B, V = video.shape[:2]
        frames = normalize_video(video.flatten(0, 1))  # (B*V, T, 3, S, S)
        embeddings = self.net.encode_video(frames)  # (B*V, E)
        probs = self.class_probabilities(embeddings, name)  # (B*V, C)
        probs = probs.view(B, V, -1).mean(dim=1)  # (B, C): mean of the views' softmax
        eval_set = self.eval_sets[name]
        eval_set.metrics.update(probs, labels)
        eval_set.num_videos.update(torch.tensor(float(B), device=self.device))
        if self.hparams.save_predictions and self.trainer.testing:
            # the video's embedding as the logits see it: L2-normalised, views averaged and normalised again
            views = F.normalize(embeddings.float(), dim=-1).view(B, V, -1)  # (B, V, E)
            embedding = F.normalize(views.mean(dim=1), dim=-1)  # (B, E)
            self._predictions.setdefault(name, []).append(
                {
                    "index": batch["index"].cpu(),
                    "label": labels.cpu(),
                    "probs": probs.half().cpu(),
                    "pred": probs.argmax(dim=-1).cpu(),  # the class top-1 counted (float16 probs can tie)
                    "embedding": embedding.half().cpu(),
                }
            )

    def _count_skipped(self, batch: dict[str, Any], name: str | None = None) -> None:
        skipped = batch.get("skipped", [])
        self.skipped_paths.update(skipped)
        if name is not None:
            self.eval_sets[name].num_skipped.update(
                torch.tensor(float(batch.get("num_skipped", 0)), device=self.device)
            )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        if "val" not in self.eval_sets:
            return
        results = self._compute("val")
        self.log("val/top1", results.pop("top1"), prog_bar=True)
        self.log_dict({f"val/{k}": v for k, v in results.items()})

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(self.trainer.datamodule.test_set_names[dataloader_idx], batch)

    def on_test_epoch_end(self) -> None:
        self._gather_across_ranks()
        for name in self.trainer.datamodule.test_set_names:
            results = self._compute(name)
            self.test_results[name] = results
            self.log_dict({f"test/{name}/{k}": v for k, v in results.items()}, add_dataloader_idx=False)

    def _compute(self, name: str) -> dict[str, float]:
        eval_set = self.eval_sets[name]
        results = {k: float(v) for k, v in eval_set.metrics.compute().items()}
        results["num_videos"] = int(eval_set.num_videos.compute())
        results["num_skipped"] = int(eval_set.num_skipped.compute())
        eval_set.metrics.reset()
        eval_set.num_videos.reset()
        eval_set.num_skipped.reset()
        return results

    def _gather_across_ranks(self) -> None:
        """Under DDP each rank saw its own videos: collect every rank's predictions and skipped paths."""
        if self.trainer.world_size == 1 or not torch.distributed.is_initialized():
            return
        parts: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(parts, (self._predictions, self.skipped_paths))
        merged: dict[str, list[dict[str, torch.Tensor]]] = {}
        for predictions, skipped in parts:
            for name, batches in predictions.items():
                merged.setdefault(name, []).extend(batches)
            self.skipped_paths |= skipped
        self._predictions = merged

    def gathered_predictions(self, name: str) -> dict[str, np.ndarray] | None:
        """The test predictions of one set (all ranks'), sorted by index.

        index, label and pred (the top-1 class) (N,); float16 class probabilities (N, C) and L2-normalised
        video embeddings (N, E).
        """
        parts = self._predictions.get(name)
        if not parts:
            return None
        merged = {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}
        order = np.argsort(merged["index"], kind="stable")
        return {k: v[order] for k, v in merged.items()}

    # --- checkpoints --------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Leave the frozen backbone out (it is rebuilt from `pretrained`): ~20 MB for B/16, not 600.
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("net.clip.")}
        # The network's own settings (with official_checkpoint they are read off the authors' file).
        checkpoint["ezclip_config"] = self.net.config.to_dict()
        # Plain types only, so the checkpoint loads with weights_only=True.
        np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "numpy": [np_kind, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
            "python": random.getstate(),
        }
        if torch.cuda.is_available():  # dropout and drop-path on the GPU draw from these
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another run (settings or data differ) or one that lacks trainable tensors."""
        problems = self._checkpoint_mismatches(checkpoint)
        if problems:
            raise ValueError("the checkpoint does not belong to this run's config: " + "; ".join(problems))
        unexpected = [k for k in checkpoint["state_dict"] if k.startswith("net.clip.")]
        if unexpected:
            log.info("checkpoint holds %d backbone tensors; loading them too", len(unexpected))
        rng = checkpoint.get("rng_states")
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            np_kind, np_keys, np_pos, np_has_gauss, np_gauss = rng["numpy"]
            np.random.set_state((np_kind, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
            random.setstate(tuple(rng["python"][:1]) + (tuple(rng["python"][1]),) + tuple(rng["python"][2:]))
            if "cuda" in rng and torch.cuda.is_available():
                if len(rng["cuda"]) != torch.cuda.device_count():
                    log.warning(
                        "checkpoint holds CUDA random states of %d devices, this machine has %d: not restored",
                        len(rng["cuda"]),
                        torch.cuda.device_count(),
                    )
                else:
                    torch.cuda.set_rng_state_all(rng["cuda"])

    def _checkpoint_mismatches(self, checkpoint: dict[str, Any]) -> list[str]:
        problems = []
        saved = checkpoint.get("hyper_parameters") or {}
        for key, value in self.hparams.items():
            if key not in RESUMABLE_CHANGES and saved.get(key) != value:
                problems.append(f"model.{key}: checkpoint {saved.get(key)!r} vs run {value!r}")
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        saved_data = checkpoint.get("datamodule_hyper_parameters") or {}
        if datamodule is not None and saved_data:
            for key in DATA_FIXED_BY_A_RUN:
                ours, theirs = _fixed_part(key, datamodule.hparams.get(key)), _fixed_part(key, saved_data.get(key))
                if ours != theirs:
                    problems.append(f"data.{key}: checkpoint {theirs!r} vs run {ours!r}")
        saved_tensors = {k for k in checkpoint.get("state_dict", {}) if not k.startswith("net.clip.")}
        expected = {f"net.{k}" for k in self.net.trainable_state_dict()}
        missing, unknown = sorted(expected - saved_tensors), sorted(saved_tensors - expected)
        if missing or unknown:
            problems.append(f"trainable tensors missing {missing[:6]}, unknown {unknown[:6]}")
        return problems


# Module settings a resumed run may change (everything else must equal the checkpoint's).
RESUMABLE_CHANGES = ("save_predictions",)
# Data settings that shape what a run trains on; paths may move between machines, these may not.
DATA_FIXED_BY_A_RUN = ("num_frames", "image_size", "batch_size", "seed", "train_scales", "horizontal_flip",
                       "color_jitter", "grayscale", "text")  # fmt: skip


def _fixed_part(key: str, value: Any) -> Any:
    """The part of a data setting a resume must keep: of the class-text setting, not the file's location."""
    if key == "text" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "descriptions"}
    return list(value) if isinstance(value, tuple) else value
