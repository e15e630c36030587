"""SynthMotion: files, list formats, base-to-novel split, determinism, exact reversal pairs, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ezclip.demo import synth

SIZE, FRAMES = 32, 8


def _decode(path) -> np.ndarray:
    """(T, H, W, 3) uint8 with decord, as the data pipeline reads them."""
    decord = pytest.importorskip("decord")
    reader = decord.VideoReader(str(path), num_threads=1)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def _rows(path) -> list[tuple[str, int]]:
    return [(line.split()[0], int(line.split()[1])) for line in path.read_text().splitlines()]


def _labels(path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = synth.generate(out, videos_per_class=2, size=SIZE, frames=FRAMES, seed=3, progress=False)
    return out, summary


def test_constants_are_consistent():
    assert len(set(synth.CLASS_NAMES)) == len(synth.CLASSES)
    paired = [c for pair in synth.PAIRS for c in pair]
    assert len(paired) == len(set(paired))
    assert sorted(synth.BASE_CLASSES + synth.NOVEL_CLASSES) == list(range(len(synth.CLASSES)))
    for a, b in synth.PAIRS:  # whole pairs on one side of the base/novel split
        assert (a in synth.BASE_CLASSES) == (b in synth.BASE_CLASSES)


def test_files_exist_and_decode(dataset):
    out, summary = dataset
    per_split = 2 * len(synth.CLASSES)
    assert summary["counts"] == {"train": per_split, "val": per_split, "test": per_split}
    for split in ("train", "val", "test"):
        rows = _rows(out / f"{split}.txt")
        assert len(rows) == summary["counts"][split]
        for relative, label in rows[:: len(synth.CLASSES) // 2]:
            assert relative.startswith(f"videos/{split}/{synth.class_slug(synth.CLASS_NAMES[label])}/")
            assert _decode(out / relative).shape == (FRAMES, SIZE, SIZE, 3)


def test_label_files_and_base_novel_split(dataset):
    out, _ = dataset
    labels = _labels(out / "labels.csv")
    assert [row["name"] for row in labels] == list(synth.CLASS_NAMES)
    assert [int(row["id"]) for row in labels] == list(range(len(synth.CLASSES)))
    descriptions = _labels(out / "descriptions.csv")
    assert list(descriptions[0]) == ["id", "name", "description"]
    assert all(row["description"] for row in descriptions)
    base, novel = _labels(out / "base_labels.csv"), _labels(out / "novel_labels.csv")
    assert [int(r["id"]) for r in base] == list(range(len(base)))
    assert [int(r["id"]) for r in novel] == list(range(len(novel)))
    for list_name, names, split in (
        ("base_train.txt", base, "train"),
        ("base_val.txt", base, "val"),
        ("novel_test.txt", novel, "test"),
    ):
        rows = _rows(out / list_name)
        assert rows, list_name
        for relative, label in rows:
            assert relative.startswith(f"videos/{split}/")
            assert f"/{synth.class_slug(names[label]['name'])}/" in relative
    assert not {n["name"] for n in base} & {n["name"] for n in novel}
    pairs = json.loads((out / "pairs.json").read_text())
    assert [tuple(p["ids"]) for p in pairs] == list(synth.PAIRS)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["size"] == SIZE and meta["version"] == synth.VERSION


def test_reversal_pairs_in_val_and_test_are_exact_time_reversals(dataset):
    out, _ = dataset
    for split in ("val", "test"):
        by_class: dict[int, list[str]] = {}
        for relative, label in _rows(out / f"{split}.txt"):
            by_class.setdefault(label, []).append(relative)
        for a, b in synth.PAIRS:
            for first, second in zip(by_class[a], by_class[b], strict=True):
                forward, backward = _decode(out / first).astype(int), _decode(out / second).astype(int)
                # Codec tolerance: the same frames encoded in the other order differ by a few levels.
                assert np.abs(forward - backward[::-1]).mean() < 2.0
                assert np.abs(forward - forward[::-1]).mean() > 2.0  # it really changes


def test_same_seed_same_lists_and_frames(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    synth.generate(again, videos_per_class=2, size=SIZE, frames=FRAMES, seed=3, progress=False)
    for name in ("train.txt", "val.txt", "test.txt", "labels.csv", "base_train.txt", "novel_test.txt", "meta.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    relative = _rows(out / "train.txt")[5][0]
    assert np.array_equal(_decode(again / relative), _decode(out / relative))


def test_classes_are_colour_changes_in_reversal_pairs():
    for a, b in synth.PAIRS:
        assert synth.CHANGES[a] == synth.CHANGES[b][::-1] and synth.CHANGES[a][0] != synth.CHANGES[a][1]
    unpaired = [c for c in range(len(synth.CLASSES)) if not any(c in pair for pair in synth.PAIRS)]
    assert all(synth.CHANGES[c][0] == synth.CHANGES[c][1] for c in unpaired)  # the classes that stay one colour
    words = {*synth.COLOR_NAMES, "a", "shape", "turns", "stays"}  # the captions' colour words
    assert all(set(description.split()) <= words for _, description in synth.CLASSES)


def test_scene_renders_its_colour_change():
    rng = np.random.default_rng(0)
    class_id = synth.CLASS_NAMES.index("turning from red to blue")
    scene = synth.random_scene(rng, class_id, 32, 16)
    assert scene.colors[0] == "red" and scene.colors[-1] == "blue"
    frames = synth.render_scene(scene)
    assert frames.shape == (16, 32, 32, 3) and frames.dtype == np.uint8
    centre = int(scene.cy[0] * 32), int(scene.cx[0] * 32)  # inside the body, clear of the mark
    for t, color in ((0, "red"), (15, "blue")):
        np.testing.assert_allclose(frames[t][centre], np.array(synth.COLORS[color]) * 255, atol=40)


def test_the_change_is_as_likely_early_as_late():
    # Symmetric: neither colour fills more of a clip on average, which an order-blind model could read as order.
    rng = np.random.default_rng(0)
    starts = [synth.random_scene(rng, 0, 16, 16).colors.count("red") for _ in range(400)]
    assert sorted(set(starts)) == list(range(6, 11))
    assert abs(np.mean(starts) - 8) < 0.2


def test_sample_frame_captions():
    rng = np.random.default_rng(0)
    images, captions = synth.sample_frames(rng, 32, 16)
    assert images.shape == (16, 32, 32, 3) and images.dtype == np.uint8
    assert all(isinstance(c, str) and c for c in captions)
    assert any("mark pointing" in c for c in captions)
    image, caption = synth.sample_frame(np.random.default_rng(1), 32, appearance=True)
    assert image.shape == (32, 32, 3)
    assert "invisible" in caption or any(color in caption for color in synth.COLOR_NAMES)


def test_odd_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="even"):
        synth.generate(tmp_path, videos_per_class=1, size=33, frames=4, progress=False)


def test_cli_data_synth(tmp_path, capsys):
    from ezclip.cli import main

    out = tmp_path / "cli"
    code = main(["data", "synth", "--out", str(out), "--videos-per-class", "1", "--size", "32", "--frames", "4"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["counts"]["train"] == len(synth.CLASSES)
    assert (out / "train.txt").is_file() and (out / "novel_test.txt").is_file()
    assert main(["data", "synth", "--out", str(tmp_path / "bad"), "--size", "31"]) == 2
