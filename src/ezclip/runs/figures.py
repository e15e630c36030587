"""The pictures researchers look at, drawn from what a run folder holds (`ezclip viz`).

From `<run>/csv/version_0/metrics.csv`: training curves (losses, learning rate, validation
metrics). From `<run>/predictions/<set>.npz` and the run's label files (`results.json` holds the
resolved config): a confusion matrix per test set and a 2-D map (t-SNE, or UMAP when installed)
of the test videos' embeddings, beside a baseline run's (e.g. the frozen backbone zero-shot).
From `<run>/checkpoints/model.pt` (or the configured model of a run without one) and a few
decoded test videos: the class token's attention over the patches, per frame and layer.
Each figure is one small PNG.
"""

from __future__ import annotations

import csv
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    _pyplot().close(fig)
    return path


# --- a run's records --------------------------------------------------------------------------------


def read_results(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "results.json").read_text())


def eval_set_files(config: dict[str, Any], name: str) -> tuple[str, str, str]:
    """(list file, label file, video root) of the test set `name` in a run's resolved config."""
    data = config["data"]
    spec = data["test_sets"][name]
    spec = {"list": spec} if isinstance(spec, str) else spec
    return spec["list"], spec.get("labels") or data["labels"], spec.get("root") or data["root"]


def class_names(config: dict[str, Any], name: str) -> list[str]:
    from ezclip.data.lists import read_labels

    return read_labels(eval_set_files(config, name)[1])


def read_metrics_csv(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Lightning's CSV log -> {column: [(step, value), ...]} for every column with a value."""
    series: dict[str, list[tuple[float, float]]] = {}
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            step = float(row.get("step") or 0)
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in (None, ""):
                    series.setdefault(key, []).append((step, float(value)))
    return series


# --- training curves ---------------------------------------------------------------------------------


# (panel title, column prefix, y label) of the training curves
CURVE_PANELS = (
    ("training losses", "train/", "loss"),
    ("learning rate", "lr", "lr"),
    ("validation", "val/", "accuracy"),
)


def has_training_curves(series: dict[str, list[tuple[float, float]]]) -> bool:
    """True when a CSV log holds any training curve (an evaluation run logs test metrics only)."""
    return any(key.startswith(prefix) for key in series for _, prefix, _ in CURVE_PANELS)


def training_curves(series: dict[str, list[tuple[float, float]]], path: str | Path, title: str = "") -> Path:
    """Losses, learning rate and validation metrics (`read_metrics_csv`) against the step, one panel each."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (label, prefix, ylabel) in zip(axes, CURVE_PANELS, strict=True):
        keys = sorted(k for k in series if k.startswith(prefix) and "/num_" not in k)  # not the video counts
        for key in keys:
            steps, values = zip(*series[key], strict=True)
            ax.plot(steps, values, marker="o" if len(steps) < 12 else None, markersize=3, label=key)
        if keys:
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path))


# --- confusion matrix --------------------------------------------------------------------------------


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, row = true class, column = predicted class (torchmetrics' MulticlassConfusionMatrix)."""
    import torch
    from torchmetrics.classification import MulticlassConfusionMatrix

    matrix = MulticlassConfusionMatrix(num_classes)(torch.from_numpy(preds), torch.from_numpy(labels))
    return matrix.numpy()


def plot_confusion(matrix: np.ndarray, names: Sequence[str], path: str | Path, title: str) -> Path:
    """Rows normalised to the share of each true class (colour), with the counts written in."""
    plt = _pyplot()
    C = len(names)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(14.0, 2.5 + 0.42 * C)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if C <= 30:
        for i in range(C):
            for j in range(C):
                if matrix[i, j]:
                    color = "white" if share[i, j] > 0.6 else "black"
                    ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=6, color=color)
    short = [textwrap.shorten(n, 32, placeholder="…") for n in names]
    ax.set_xticks(range(C), short, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(C), short, fontsize=6)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true", fontsize=8)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"{title}\ntop-1 {100 * accuracy:.1f}% of {int(matrix.sum())} videos", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of the true class")
    fig.tight_layout()
    return _save(fig, Path(path))


# --- 2-D maps of embeddings ---------------------------------------------------------------------------


def _affinities(distances: np.ndarray, perplexity: float, steps: int = 64) -> np.ndarray:
    """(N, N) squared distances -> conditional p(j|i) (rows sum to 1) with each row's perplexity matched.

    Bisection on the Gaussian precision of every row at once, in log space.
    """
    n = len(distances)
    off = ~np.eye(n, dtype=bool)  # a point is not its own neighbour
    # Distances from the nearest neighbour: the largest weight is exp(0), nothing underflows to 0/0.
    d = distances - distances[off].reshape(n, n - 1).min(axis=1, keepdims=True)
    np.fill_diagonal(d, 0.0)  # masked below; finite, so exp and d * p stay finite
    target = np.log(perplexity)
    low, high = np.full(n, -30.0), np.full(n, 30.0)  # log precision
    for _ in range(steps):
        beta = np.exp((low + high) / 2)[:, None]  # (N, 1)
        p = np.exp(-d * beta) * off  # (N, N)
        total = p.sum(axis=1, keepdims=True)
        p = p / total
        entropy = np.log(total[:, 0]) + beta[:, 0] * (d * p).sum(axis=1)
        too_flat = entropy > target  # too many neighbours: sharpen
        low = np.where(too_flat, (low + high) / 2, low)
        high = np.where(too_flat, high, (low + high) / 2)
    return p


def tsne(x: np.ndarray, perplexity: float = 30.0, iterations: int = 750, seed: int = 0) -> np.ndarray:
    """Exact t-SNE (van der Maaten and Hinton, 2008) of (N, D) points -> (N, 2); same seed, same map.

    O(N^2) per iteration: meant for a test set of a few hundred videos. Early exaggeration 12 for
    the first 250 iterations, momentum 0.5 then 0.8, per-coordinate gains, learning rate
    max(N / 48, 50) (scikit-learn's "auto").
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    perplexity = min(perplexity, (n - 1) / 3)
    squared = (x * x).sum(axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * x @ x.T, 0.0)  # (N, N)
    p = _affinities(distances, perplexity)
    p = np.maximum((p + p.T) / (2 * n), 1e-12)  # symmetric joint probabilities
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 1e-4, size=(n, 2))
    velocity, gains = np.zeros_like(y), np.ones_like(y)
    rate = max(n / 48, 50.0)
    for step in range(iterations):
        exaggeration, momentum = (12.0, 0.5) if step < 250 else (1.0, 0.8)
        kernel = 1.0 / (1.0 + ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1))  # (N, N) Student-t
        np.fill_diagonal(kernel, 0.0)
        q = np.maximum(kernel / kernel.sum(), 1e-12)
        weights = (exaggeration * p - q) * kernel  # (N, N)
        grad = 4.0 * (weights.sum(axis=1, keepdims=True) * y - weights @ y)  # (N, 2)
        gains = np.where(np.sign(grad) != np.sign(velocity), gains + 0.2, gains * 0.8).clip(min=0.01)
        velocity = momentum * velocity - rate * gains * grad
        y = y + velocity
    return y - y.mean(axis=0)


def map_2d(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, D) -> ((N, 2), method): UMAP when the `umap` package is installed, else t-SNE."""
    try:
        import umap
    except ImportError:
        return tsne(x, seed=seed), "t-SNE"
    return umap.UMAP(random_state=seed).fit_transform(x), "UMAP"


def plot_embedding_maps(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]],
    names: Sequence[str],
    path: str | Path,
    seed: int = 0,
    max_points: int = 1000,
) -> Path:
    """One scatter per (title, embeddings (N, E), labels (N,)), points coloured by class, side by side.

    Above `max_points` videos a random subset (the same for every panel) is mapped: exact t-SNE is O(N^2).
    """
    plt = _pyplot()
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 2.4, 4.2), squeeze=False)
    for ax, (title, embeddings, labels) in zip(axes[0], panels, strict=True):
        n = len(labels)
        shown = np.sort(np.random.default_rng(seed).permutation(n)[:max_points])
        coords, method = map_2d(embeddings[shown].astype(np.float32), seed)
        for c in np.unique(labels[shown]):
            mine = labels[shown] == c
            ax.scatter(*coords[mine].T, s=9, color=cmap(int(c) % cmap.N), label=names[int(c)])
        count = f"{len(shown)} of {n}" if len(shown) < n else str(n)
        ax.set_title(f"{title}\n{method} of {count} test video embeddings", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=6, loc="center right", markerscale=1.5)
    fig.tight_layout(rect=(0, 0, 1 - 2.4 / fig.get_figwidth(), 1))
    return _save(fig, Path(path))


# --- attention maps ------------------------------------------------------------------------------------


def run_model(run_dir: Path, results: dict[str, Any]):
    """The run's model: its `checkpoints/model.pt`, the checkpoint an eval run tested, or its configured model."""
    from ezclip.models import EZCLIPConfig, build_from_config, load_model

    own = run_dir / "checkpoints" / "model.pt"
    if own.is_file():
        return load_model(own)
    if results.get("checkpoint"):
        return load_model(results["checkpoint"]["path"])
    settings = results["config"]["model"]
    config = EZCLIPConfig.from_dict({k: settings[k] for k in EZCLIPConfig.field_names() if k in settings})
    return build_from_config(config).eval()


def decode_clips(config: dict[str, Any], name: str, paths: Sequence[str]) -> np.ndarray:
    """Videos of a test set (paths as its list gives them) as the test decodes them: uint8 (N, T, 3, S, S).

    ezclip.data decoding with the test's TSN sampling, then TestTransform's centre view.
    """
    from ezclip.data.decoding import decode_video
    from ezclip.data.sampling import ClipSampler
    from ezclip.data.transforms import TestTransform

    data = config["data"]
    root = eval_set_files(config, name)[2]
    transform = TestTransform(data["image_size"], data["resize_size"], n_crops=1)
    sampler = ClipSampler(data["num_frames"], train=False)
    return np.stack([transform(decode_video(str(Path(root) / path), sampler))[0].numpy() for path in paths])


def first_clips(config: dict[str, Any], name: str, count: int) -> tuple[np.ndarray, list[int]]:
    """The first listed video of each of the first `count` classes of a test set: (`decode_clips`, labels)."""
    from ezclip.data.lists import read_list

    first_of: dict[int, str] = {}
    for entry in read_list(eval_set_files(config, name)[0]):
        first_of.setdefault(entry.label, entry.path)
    labels = sorted(first_of)[:count]
    return decode_clips(config, name, [first_of[c] for c in labels]), labels


def class_token_attention(model, clips: np.ndarray, layers: Sequence[int]) -> dict[int, np.ndarray]:
    """uint8 (B, T, 3, S, S) clips -> {layer: (B, T, 1+N(+1))}: the class token's attention, mean over heads.

    Columns: the class token, the N patches, and in prompted layers the frame's prompt token last.
    """
    import torch

    from ezclip.data.transforms import normalize_video

    with torch.no_grad():
        _, attention = model.encode_frames(normalize_video(torch.from_numpy(clips)), return_attention=layers)
    layers_in_model = model.vision_dims.layers
    return {layer % layers_in_model: weights[:, :, :, 0].mean(dim=2).numpy() for layer, weights in attention.items()}


def plot_attention(
    clips: np.ndarray,
    captions: Sequence[str],
    rows: Sequence[tuple[str, dict[int, np.ndarray]]],
    num_patches: int,
    path: str | Path,
) -> Path:
    """Per clip: its frames, then one row per (model, layer) with the class token's attention on the patches.

    `rows`: (model title, {layer: (B, T, L)} from `class_token_attention`). Each map is scaled to its
    own maximum; the share the class token puts on the frame's prompt token (prompted layers) is
    written under the frame.
    """
    plt = _pyplot()
    B, T = clips.shape[:2]
    grid = int(round(num_patches**0.5))
    lines = [(title, layer, maps) for title, by_layer in rows for layer, maps in by_layer.items()]
    fig, axes = plt.subplots(B * (1 + len(lines)), T, figsize=(0.85 * T + 1.4, 0.95 * B * (1 + len(lines))))
    axes = np.asarray(axes).reshape(B * (1 + len(lines)), T)
    for b in range(B):
        frames = clips[b].transpose(0, 2, 3, 1)  # (T, S, S, 3)
        size = frames.shape[1]
        top = b * (1 + len(lines))
        for r in range(1 + len(lines)):
            for t in range(T):
                ax = axes[top + r, t]
                ax.imshow(frames[t], extent=(0, size, size, 0), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    continue
                title, layer, maps = lines[r - 1]
                row = maps[b, t]  # (1+N) or (1+N+1)
                patches = row[1 : 1 + num_patches].reshape(grid, grid)
                ax.imshow(
                    patches / patches.max(), cmap="inferno", alpha=0.6, extent=(0, size, size, 0), vmin=0,
                    interpolation="nearest",
                )  # fmt: skip
                if len(row) > 1 + num_patches:
                    ax.set_xlabel(f"prompt {100 * row[-1]:.0f}%", fontsize=5, labelpad=1)
        axes[top, 0].set_ylabel(textwrap.fill(captions[b], 18), fontsize=6)
        for r, (title, layer, _) in enumerate(lines, start=1):
            axes[top + r, 0].set_ylabel(textwrap.fill(f"{title}, layer {layer}", 18), fontsize=6)
    fig.suptitle(
        "class token -> patches attention (mean over heads,\neach map scaled to its max); 'prompt': its weight\n"
        "on the frame's temporal prompt token (prompted layers)",
        fontsize=7,
    )
    fig.tight_layout(h_pad=0.3, w_pad=0.1)
    return _save(fig, Path(path))


# --- everything for one run -------------------------------------------------------------------------


def write_figures(
    run_dir: str | Path,
    out: str | Path | None = None,
    baseline: str | Path | None = None,
    layers: Sequence[int] = (-1,),
    videos: int = 2,
    seed: int = 0,
) -> list[Path]:
    """Every figure a run's files allow, as PNGs in `out` (default `<run>/viz`); returns their paths.

    `baseline`: another run on the same test sets (e.g. the zero-shot evaluation): its embedding
    map and attention are drawn beside this run's. `layers`: vision layers of the attention maps
    (negative counts from the end); `videos`: how many test videos they show.
    """
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "viz"
    results = read_results(run_dir)
    config = results["config"]
    written = []
    metrics_csv = run_dir / "csv" / "version_0" / "metrics.csv"
    series = read_metrics_csv(metrics_csv) if metrics_csv.is_file() else {}
    if has_training_curves(series):
        written.append(training_curves(series, out / "curves.png", title=results.get("run_name", run_dir.name)))
    runs = [("adapted" if baseline else run_dir.name, run_dir, results)]
    if baseline is not None:
        runs.insert(0, ("baseline", Path(baseline), read_results(baseline)))
    models = None  # loaded once, for the first attention figure
    for name in results.get("test", {}):
        if not (run_dir / "predictions" / f"{name}.npz").is_file():
            continue
        names = class_names(config, name)
        own = np.load(run_dir / "predictions" / f"{name}.npz")
        # runs saved before predictions kept "pred" have float16 probabilities only, whose argmax can tie
        preds = own["pred"] if "pred" in own else own["probs"].argmax(axis=1)
        matrix = confusion_matrix(own["label"], preds, len(names))
        written.append(plot_confusion(matrix, names, out / f"confusion_{name}.png", f"{run_dir.name}: {name}"))
        panels = []
        for title, directory, _ in runs:
            npz = directory / "predictions" / f"{name}.npz"
            predictions = np.load(npz) if npz.is_file() else {}
            if "embedding" in predictions:
                panels.append((f"{title}: {directory.name}", predictions["embedding"], predictions["label"]))
        if panels:
            written.append(plot_embedding_maps(panels, names, out / f"embeddings_{name}.png", seed))
        if videos > 0:
            models = models or [(title, run_model(directory, run_results)) for title, directory, run_results in runs]
            clips, labels = first_clips(config, name, videos)
            rows = [(title, class_token_attention(model, clips, layers)) for title, model in models]
            num_patches = models[-1][1].vision_dims.num_patches
            path = out / f"attention_{name}.png"
            written.append(plot_attention(clips, [names[c] for c in labels], rows, num_patches, path))
    return written
