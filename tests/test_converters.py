"""Annotation converters: tiny fake releases laid out exactly like the official ones -> project lists."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ezclip.cli import main
from ezclip.data.lists import read_labels, read_list
from ezclip.prep import convert as convert_cli
from ezclip.prep.formats import hmdb51, kinetics, ssv2, ucf101
from ezclip.prep.formats.common import AnnotationError


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_crlf(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode())


# -- UCF101 ---------------------------------------------------------------------------------


def make_ucf(root: Path) -> Path:
    """classInd + three train/test lists, CRLF like the official ucfTrainTestlist.zip."""
    ann = root / "ucfTrainTestlist"
    ann.mkdir()
    write_crlf(ann / "classInd.txt", ["1 ApplyEyeMakeup", "2 ApplyLipstick", "3 YoYo"])
    for split in (1, 2, 3):
        write_crlf(
            ann / f"trainlist0{split}.txt",
            [
                f"ApplyEyeMakeup/v_ApplyEyeMakeup_g0{split}_c01.avi 1",
                f"ApplyLipstick/v_ApplyLipstick_g0{split}_c01.avi 2",
                f"YoYo/v_YoYo_g0{split}_c02.avi 3",
            ],
        )
        write_crlf(ann / f"testlist0{split}.txt", [f"YoYo/v_YoYo_g1{split}_c01.avi", "ApplyEyeMakeup/v_x_g20_c01.avi"])
    return ann


def test_ucf101_lists_labels_and_crlf(tmp_path):
    ann = make_ucf(tmp_path)
    summary = convert_cli.convert_to("ucf101", ann, tmp_path / "out")
    out = tmp_path / "out"
    assert summary["classes"] == 3
    assert summary["lists"] == {f"{kind}{s}.txt": n for s in (1, 2, 3) for kind, n in (("train", 3), ("test", 2))}
    assert lines_of(out / "train2.txt") == [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 0",
        "ApplyLipstick/v_ApplyLipstick_g02_c01.avi 1",
        "YoYo/v_YoYo_g02_c02.avi 2",
    ]
    assert lines_of(out / "test1.txt") == ["YoYo/v_YoYo_g11_c01.avi 2", "ApplyEyeMakeup/v_x_g20_c01.avi 0"]
    assert b"\r" not in (out / "test1.txt").read_bytes()
    assert read_labels(out / "labels.csv") == ["ApplyEyeMakeup", "ApplyLipstick", "YoYo"]
    assert [e.label for e in read_list(out / "test3.txt", num_classes=3)] == [2, 0]


def test_ucf101_train_label_disagreeing_with_folder_names_file_and_line(tmp_path):
    ann = make_ucf(tmp_path)
    write_crlf(ann / "trainlist02.txt", ["YoYo/v_YoYo_g01_c01.avi 3", "YoYo/v_YoYo_g02_c01.avi 1"])
    with pytest.raises(AnnotationError, match=r"trainlist02.txt:2: label 1 disagrees with the folder YoYo"):
        ucf101.convert(ann)


def test_ucf101_unknown_class_folder_is_an_error(tmp_path):
    ann = make_ucf(tmp_path)
    write_crlf(ann / "testlist03.txt", ["Juggling/v_Juggling_g01_c01.avi"])
    with pytest.raises(AnnotationError, match=r"testlist03.txt:1: .*known class"):
        ucf101.convert(ann)


# -- HMDB51 ---------------------------------------------------------------------------------


def make_hmdb(root: Path) -> Path:
    """Per-class, per-split mark files with the official trailing space after the mark."""
    ann = root / "testTrainMulti_7030_splits"
    ann.mkdir()
    marks = {
        "wave": [("wave_a.avi", "1"), ("wave_b.avi", "2"), ("wave_c.avi", "0")],
        "brush_hair": [("Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_brush_hair_h_cm_np1_fr_goo_0.avi", "2")]
        + [("hair_b.avi", "1")],
        "climb_stairs": [("stairs_a.avi", "1"), ("stairs_b.avi", "1"), ("stairs_c.avi", "2")],
    }
    for name, videos in marks.items():
        for split in (1, 2, 3):
            # Split 2 swaps train and test, so each split's lists differ.
            swap = {"1": "2", "2": "1", "0": "0"} if split == 2 else {m: m for m in "012"}
            (ann / f"{name}_test_split{split}.txt").write_text("".join(f"{v} {swap[m]} \n" for v, m in videos))
    return ann


def test_hmdb51_marks_sorted_classes_and_class_folders(tmp_path):
    ann = make_hmdb(tmp_path)
    out = tmp_path / "out"
    summary = convert_cli.convert_to("hmdb51", ann, out)
    assert read_labels(out / "labels.csv") == ["brush_hair", "climb_stairs", "wave"]
    assert summary["lists"]["train1.txt"] == 4 and summary["lists"]["test1.txt"] == 3
    assert lines_of(out / "train1.txt") == [
        "brush_hair/hair_b.avi 0",
        "climb_stairs/stairs_a.avi 1",
        "climb_stairs/stairs_b.avi 1",
        "wave/wave_a.avi 2",
    ]
    assert lines_of(out / "test1.txt")[0] == (
        "brush_hair/Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_brush_hair_h_cm_np1_fr_goo_0.avi 0"
    )
    assert "wave/wave_b.avi 2" in lines_of(out / "train2.txt")  # split 2's marks are swapped
    assert all("wave_c" not in line for f in out.glob("*.txt") for line in lines_of(f))  # mark 0: unused
    entries = read_list(out / "test3.txt", num_classes=3)
    assert [e.path for e in entries][-1] == "wave/wave_b.avi"


def test_hmdb51_bad_mark_and_missing_split(tmp_path):
    ann = make_hmdb(tmp_path)
    (ann / "wave_test_split3.txt").write_text("wave_a.avi 1 \nwave_b.avi 7 \n")
    with pytest.raises(AnnotationError, match=r"wave_test_split3.txt:2: expected '<video>.avi <0\|1\|2>'"):
        hmdb51.convert(ann)
    (ann / "wave_test_split3.txt").unlink()
    with pytest.raises(AnnotationError, match=r"class 'wave' has no split file\(s\) \[3\]"):
        hmdb51.convert(ann)


# -- Kinetics -------------------------------------------------------------------------------

K400_TRAIN = """label,youtube_id,time_start,time_end,split,is_cc
abseiling,--07WQ2iBlw,1,11,train,0
"air drumming",-0nHTr1EQQE,14,24,train,0
"playing bass guitar",abc_DEF-123,305,315,train,1
abseiling,zz9,0,10,train,0
"""
K400_VAL = """label,youtube_id,time_start,time_end,split,is_cc
"air drumming",0wR5jVB-WPk,417,427,val,0
abseiling,3caPS4FHFF8,36,46,val,0
"""
K600_TEST_UNLABELLED = "youtube_id,time_start,time_end,split\nxyz,0,10,test\n"


def make_kinetics(root: Path) -> Path:
    ann = root / "k400"
    ann.mkdir()
    (ann / "train.csv").write_text(K400_TRAIN)
    (ann / "validate.csv").write_text(K400_VAL)
    (ann / "test.csv").write_text(K600_TEST_UNLABELLED)
    return ann


def test_kinetics_cvdf_naming_matches_vifi_lists(tmp_path):
    ann = make_kinetics(tmp_path)
    out = tmp_path / "out"
    summary = convert_cli.convert_to("k400", ann, out, naming="cvdf")
    assert read_labels(out / "labels.csv") == ["abseiling", "air drumming", "playing bass guitar"]
    assert summary["lists"] == {"train.txt": 4, "val.txt": 2}  # the unlabelled test CSV is skipped
    assert lines_of(out / "val.txt") == ["val/0wR5jVB-WPk_000417_000427.mp4 1", "val/3caPS4FHFF8_000036_000046.mp4 0"]
    assert lines_of(out / "train.txt")[2] == "train/abc_DEF-123_000305_000315.mp4 2"


def test_kinetics_folder_naming_keeps_multiword_labels(tmp_path):
    ann = make_kinetics(tmp_path)
    out = tmp_path / "out"
    kinetics.convert(ann, naming="folders").write(out)
    assert lines_of(out / "train.txt")[1:3] == [
        "train/air drumming/-0nHTr1EQQE.mp4 1",
        "train/playing bass guitar/abc_DEF-123.mp4 2",
    ]
    entries = read_list(out / "train.txt", num_classes=3)
    assert entries[2].path == "train/playing bass guitar/abc_DEF-123.mp4" and entries[2].label == 2


def test_kinetics_bad_time_names_file_and_line(tmp_path):
    ann = make_kinetics(tmp_path)
    (ann / "validate.csv").write_text(K400_VAL + "abseiling,q,ten,20,val,0\n")
    with pytest.raises(AnnotationError, match=r"validate.csv:4: time 'ten' is not a number"):
        kinetics.convert(ann)


# -- Something-Something v2 -----------------------------------------------------------------


def make_ssv2(root: Path) -> Path:
    ann = root / "ssv2"
    ann.mkdir()
    labels = {"Approaching something with your camera": "0", "Putting something on a surface": "2"}
    labels["Holding something next to something"] = "1"
    (ann / ssv2.LABELS_FILE).write_text(json.dumps(labels, indent=4))
    train = [
        {"id": "78687", "label": "holding a cup next to a pen", "template": "Holding [something] next to [something]"},
        {"id": "42326", "label": "putting a box on a table", "template": "Putting [something] on a surface"},
    ]
    val = [{"id": "74225", "label": "approaching a door", "template": "Approaching [something] with your camera"}]
    for items in (train, val):
        for item in items:
            item["placeholders"] = ["x"]
    (ann / "something-something-v2-train.json").write_text(json.dumps(train))
    (ann / "something-something-v2-validation.json").write_text(json.dumps(val))
    return ann


def test_ssv2_templates_without_brackets_index_order(tmp_path):
    ann = make_ssv2(tmp_path)
    out = tmp_path / "out"
    summary = convert_cli.convert_to("ssv2", ann, out)
    assert summary["lists"] == {"train.txt": 2, "val.txt": 1}
    assert read_labels(out / "labels.csv") == [
        "Approaching something with your camera",
        "Holding something next to something",
        "Putting something on a surface",
    ]
    assert lines_of(out / "train.txt") == ["78687.webm 1", "42326.webm 2"]
    assert [(e.path, e.label) for e in read_list(out / "val.txt", num_classes=3)] == [("74225.webm", 0)]


def test_ssv2_unknown_template_and_bad_json(tmp_path):
    ann = make_ssv2(tmp_path)
    bad = [{"id": "1", "template": "Juggling [something]", "placeholders": []}]
    (ann / "something-something-v2-validation.json").write_text(json.dumps(bad))
    with pytest.raises(AnnotationError, match="item 0 .*'Juggling something' not in"):
        ssv2.convert(ann)
    (ann / "something-something-v2-validation.json").write_text('[\n{"id": 1,\n')
    with pytest.raises(AnnotationError, match=r"validation.json:3: invalid JSON"):
        ssv2.convert(ann)


# -- the authors' 232-class K600 list ---------------------------------------------------------

AUTHORS_PREFIX = "/cluster/datastore/shahzaa/data_for_action_clip/K_600_exclusive"


def make_authors_list(root: Path) -> tuple[Path, Path]:
    """Lines as in the authors' test_600_exclusive.txt (absolute path, frame count, label) + labels CSV."""
    root.mkdir(parents=True, exist_ok=True)
    listed = root / "test_600_exclusive.txt"
    listed.write_text(
        f"{AUTHORS_PREFIX}/SnWaq5utkfE_000003_000013.mp4 250 2\n"
        f"{AUTHORS_PREFIX}/dUXOj6rPgcA_000003_000013.mp4 300 0\n"
        f"{AUTHORS_PREFIX}/gone_000000_000010.mp4 110 1\n"
    )
    labels = root / "kinetics_600_labels_exclusive.csv"
    write_crlf(labels, ["id,name", "0,abseiling", "1,acting in play", "2,adjusting glasses"])
    return listed, labels


def test_authors_list_keeps_file_names_and_finds_them_under_a_video_root(tmp_path, capsys):
    listed, labels = make_authors_list(tmp_path / "ann")
    videos = tmp_path / "k600"
    for path in ("val/SnWaq5utkfE_000003_000013.mp4", "train/dUXOj6rPgcA_000003_000013.mp4",
                 "val/dUXOj6rPgcA_000003_000013.mp4"):  # fmt: skip
        (videos / path).parent.mkdir(parents=True, exist_ok=True)
        (videos / path).write_bytes(b"")
    argv = ["data", "convert", "k600-authors", "--annotations", str(tmp_path / "ann"), "--labels", str(labels)]
    assert main([*argv, "--out", str(tmp_path / "flat")]) == 0
    assert json.loads(capsys.readouterr().out)["lists"] == {"test_exclusive.txt": 3}
    assert lines_of(tmp_path / "flat" / "test_exclusive.txt") == [
        "SnWaq5utkfE_000003_000013.mp4 2", "dUXOj6rPgcA_000003_000013.mp4 0", "gone_000000_000010.mp4 1",
    ]  # fmt: skip
    assert read_labels(tmp_path / "flat" / "labels.csv") == ["abseiling", "acting in play", "adjusting glasses"]
    assert main([*argv, "--out", str(tmp_path / "found"), "--video-root", str(videos)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["not_found_under_video_root"] == 1 and "232" in summary["warning"]
    # A name found twice (train/ and val/) resolves to the first in sorted order.
    assert [e.path for e in read_list(tmp_path / "found" / "test_exclusive.txt")] == [
        "val/SnWaq5utkfE_000003_000013.mp4", "train/dUXOj6rPgcA_000003_000013.mp4", "gone_000000_000010.mp4",
    ]  # fmt: skip


def test_authors_list_errors_name_file_and_line(tmp_path, capsys):
    listed, labels = make_authors_list(tmp_path)
    argv = ["data", "convert", "k600-authors", "--annotations", str(listed), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "needs --labels" in capsys.readouterr().err
    listed.write_text(f"{AUTHORS_PREFIX}/a.mp4 250 3\n")
    assert main([*argv, "--labels", str(labels)]) == 2
    assert "test_600_exclusive.txt:1: label 3 out of range [0, 3)" in capsys.readouterr().err
    listed.write_text(f"{AUTHORS_PREFIX}/a.mp4 0\n")
    assert main([*argv, "--labels", str(labels)]) == 2
    assert "test_600_exclusive.txt:1: expected '<video path> <frames> <label>'" in capsys.readouterr().err


# -- command line ---------------------------------------------------------------------------


def test_cli_convert_prints_counts_and_reports_errors_in_one_line(tmp_path, capsys):
    ann = make_kinetics(tmp_path)
    assert main(["data", "convert", "k400", "--annotations", str(ann), "--out", str(tmp_path / "o")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["lists"] == {"train.txt": 4, "val.txt": 2} and "400" in summary["warning"]
    assert main(["data", "convert", "ucf101", "--annotations", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "annotation folder not found" in capsys.readouterr().err


def test_labels_csv_quotes_names_with_commas(tmp_path):
    from ezclip.prep.formats.common import Conversion

    Conversion(["a, b", "c"]).write(tmp_path)
    assert read_labels(tmp_path / "labels.csv") == ["a, b", "c"]
    assert list(csv.reader(open(tmp_path / "labels.csv")))[1] == ["0", "a, b"]


# -- flat folder for the ViFi lists ---------------------------------------------------------


def test_flatten_links_class_folders_into_one_folder_and_refuses_repeated_names(tmp_path, capsys):
    release = tmp_path / "UCF-101"
    for path in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "YoYo/v_YoYo_g01_c02.avi", "YoYo/notes.txt"):
        (release / path).parent.mkdir(parents=True, exist_ok=True)
        (release / path).write_bytes(path.encode())
    flat = tmp_path / "videos"
    assert main(["data", "flatten", "--src", str(release), "--dest", str(flat)]) == 0
    assert json.loads(capsys.readouterr().out)["linked"] == 2
    assert sorted(p.name for p in flat.iterdir()) == ["v_ApplyEyeMakeup_g01_c01.avi", "v_YoYo_g01_c02.avi"]
    assert (flat / "v_YoYo_g01_c02.avi").read_bytes() == b"YoYo/v_YoYo_g01_c02.avi"
    # Run again: nothing to do. A different file already under a name is a conflict, never overwritten.
    (flat / "v_YoYo_g01_c02.avi").unlink()
    (flat / "v_YoYo_g01_c02.avi").write_bytes(b"mine")
    assert main(["data", "flatten", "--src", str(release), "--dest", str(flat)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert (out["already"], out["conflicts"], out["conflict_examples"]) == (1, 1, ["v_YoYo_g01_c02.avi"])
    assert (flat / "v_YoYo_g01_c02.avi").read_bytes() == b"mine"
    (release / "Other").mkdir()
    (release / "Other" / "v_YoYo_g01_c02.avi").write_bytes(b"twin")
    assert main(["data", "flatten", "--src", str(release), "--dest", str(tmp_path / "x")]) == 2
    assert "1 file names occur more than once" in capsys.readouterr().err
