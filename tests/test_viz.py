"""`ezclip viz` on a tiny trained run and its zero-shot baseline; t-SNE and the confusion matrix."""

from __future__ import annotations

import numpy as np

from ezclip.runs import figures


def test_viz_writes_every_figure_of_a_run_beside_its_baseline(runs, tmp_path, capsys):
    from ezclip.cli import main

    trained, zero_shot = runs
    out = tmp_path / "figures"
    assert main(["viz", str(trained), "--baseline", str(zero_shot), "--out", str(out), "--layers", "0", "-1"]) == 0
    names = ["curves.png", "confusion_synthmotion.png", "embeddings_synthmotion.png", "attention_synthmotion.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert capsys.readouterr().out.split() == [str(out / name) for name in names]
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < 200_000, name
    series = figures.read_metrics_csv(trained / "csv" / "version_0" / "metrics.csv")
    assert any(k.startswith("train/") for k in series) and any(k.startswith("lr") for k in series)
    assert "val/top1" in series


def test_viz_of_a_run_without_checkpoint_draws_its_configured_model(runs):
    _, zero_shot = runs
    written = figures.write_figures(zero_shot, videos=1)
    # an eval run has no CSV training log: no curves, the rest as usual, into <run>/viz
    assert [p.name for p in written] == [
        "confusion_synthmotion.png",
        "embeddings_synthmotion.png",
        "attention_synthmotion.png",
    ]
    assert all(p.parent == zero_shot / "viz" for p in written)


def test_viz_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    from ezclip.cli import main

    assert main(["viz", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    labels = np.array([0, 0, 1, 2, 2, 2])
    preds = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(figures.confusion_matrix(labels, preds, num_classes=4), expected)


def test_affinities_match_the_perplexity():
    x = np.random.default_rng(0).normal(size=(60, 5))
    squared = ((x[:, None] - x[None]) ** 2).sum(-1)
    p = figures._affinities(squared, perplexity=10.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.all(np.diag(p) == 0)
    entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
    np.testing.assert_allclose(np.exp(entropy), 10.0, rtol=1e-3)


def test_tsne_keeps_clusters_apart_and_is_deterministic():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(4, 20))
    labels = np.repeat(np.arange(4), 25)
    x = centres[labels] + rng.normal(size=(100, 20))
    y = figures.tsne(x, perplexity=15, iterations=400, seed=1)
    assert y.shape == (100, 2)
    # each point's 5 nearest neighbours in the map come from its own cluster
    distances = ((y[:, None] - y[None]) ** 2).sum(-1) + np.diag(np.full(100, np.inf))
    neighbours = np.argsort(distances, axis=1)[:, :5]
    assert (labels[neighbours] == labels[:, None]).mean() > 0.95
    np.testing.assert_array_equal(y, figures.tsne(x, perplexity=15, iterations=400, seed=1))
