"""List, label and exclusion files; class texts from names, templates and description CSVs."""

from __future__ import annotations

import logging

import pytest

from ezclip.data.lists import (
    ListFormatError,
    VideoEntry,
    apply_exclusions,
    read_exclusions,
    read_labels,
    read_list,
)
from ezclip.data.text import DescriptionsError, class_texts, normalize_name, read_descriptions


def write(path, text: str, newline: str = "\n"):
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# -- lists ---------------------------------------------------------------------------------------


def test_list_tolerates_crlf_trailing_spaces_blank_lines_and_spaces_in_paths(tmp_path):
    lst = write(tmp_path / "l.txt", "a/v1.avi 0 \n\n  b/v 2.mp4 1\n\n", newline="\r\n")
    assert read_list(lst, num_classes=2) == [VideoEntry("a/v1.avi", 0), VideoEntry("b/v 2.mp4", 1)]


@pytest.mark.parametrize(
    "line, message",
    [("a/v1.avi", "expected '<video path> <int label>'"), ("a/v1.avi x", "not an integer"), ("a/v.avi 5", "range")],
)
def test_list_errors_name_file_and_line(tmp_path, line, message):
    lst = write(tmp_path / "l.txt", f"ok.avi 0\n\n{line}\n")
    with pytest.raises(ListFormatError, match=message) as info:
        read_list(lst, num_classes=3)
    assert f"{lst}:3:" in str(info.value)


def test_negative_label_is_out_of_range_without_num_classes(tmp_path):
    with pytest.raises(ListFormatError, match=r"l.txt:1: label -1 out of range"):
        read_list(write(tmp_path / "l.txt", "v.avi -1\n"))


def test_labels_any_order_and_quoted_names(tmp_path):
    csv = write(tmp_path / "labels.csv", 'id,name\n1,"pull ups, fast"\n0,abseiling\n\n', newline="\r\n")
    assert read_labels(csv) == ["abseiling", "pull ups, fast"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("idx,name\n0,a\n", "header"),
        ("id,name\n0,a\n2,b\n", "without gaps"),
        ("id,name\n0,a\n0,b\n", ":3: duplicate id 0"),
        ("id,name\nzero,a\n", ":2: id 'zero'"),
        ("id,name\n", "no classes"),
        ("", "header"),
    ],
)
def test_label_errors(tmp_path, text, message):
    with pytest.raises(ListFormatError, match=message):
        read_labels(write(tmp_path / "labels.csv", text))


def test_exclusions_are_removed_and_counted(tmp_path):
    entries = [VideoEntry("a/1.mp4", 0), VideoEntry("a/2.mp4", 1), VideoEntry("b/3.mp4", 0)]
    excluded = read_exclusions(write(tmp_path / "ex.txt", "a/2.mp4\r\n./b/3.mp4 \n\nnot/listed.mp4\n"))
    kept, removed = apply_exclusions(entries, excluded)
    assert kept == [VideoEntry("a/1.mp4", 0)] and removed == 2


# -- class texts ---------------------------------------------------------------------------------

NAMES = ["Apply Eye Makeup", "pull_ups", "Yo Yo"]


def test_names_and_templates():
    assert class_texts(NAMES) == [[n] for n in NAMES]
    texts = class_texts(NAMES, "templates", templates=["a video of {}.", "{} in action"])
    assert texts[1] == ["a video of pull_ups.", "pull_ups in action"]
    assert all(len(t) == 2 for t in texts)


def test_authors_gpt3_csv_quirks(tmp_path):
    csv = tmp_path / "gpt3.csv"
    csv.write_text(
        "SNo,Class Name,GPT3 discription\n"
        '0,apply eye makeup,"\n\n  Applying eye makeup is done with a brush.  "\n'
        '1,Pull Ups,"\nA pull-up is an upper-body exercise where"\n'
        "2,yo yo,\n"
    )
    assert normalize_name("  Pull_Ups ") == "pull ups"
    descriptions = read_descriptions(csv)
    assert descriptions["apply eye makeup"] == "Applying eye makeup is done with a brush."
    assert descriptions["pull ups"] == "A pull-up is an upper-body exercise where"
    assert "yo yo" not in descriptions  # empty text counts as missing


def test_authors_k600_csv_with_crlf_records_and_lf_inside_cells(tmp_path):
    # As in their kinetics_600_labels_exclusive_discription_new.csv: CRLF ends each record, the
    # quoted cells keep bare LF line breaks (even a blank line), and quotes inside are doubled.
    csv = tmp_path / "k600.csv"
    csv.write_bytes(
        b"SNo,Class Name,GPT3 discription\r\n"
        b'1,opening bottle (not wine),"\n\nOpening a bottle is...\n\nIt is ""easy""."\r\n'
        b'2,abseiling,"\n\nAbseiling is a descent."\r\n'
    )
    descriptions = read_descriptions(csv)
    assert descriptions["opening bottle (not wine)"] == 'Opening a bottle is...\n\nIt is "easy".'
    assert descriptions["abseiling"] == "Abseiling is a descent."


def test_descriptions_missing_error_lists_classes(tmp_path):
    csv = write(tmp_path / "d.csv", "id,name,description\n0,apply eye makeup,Eyes.\n")
    with pytest.raises(DescriptionsError, match=r"2 of 3 classes: \['pull_ups', 'Yo Yo'\]"):
        class_texts(NAMES, "descriptions", descriptions_csv=csv)


def test_descriptions_fall_back_to_templates_and_log(tmp_path, caplog):
    csv = write(tmp_path / "d.csv", "id,name,description\n0,APPLY  eye_makeup, Eyes. \n1,pull ups,Up.\n")
    caplog.set_level(logging.WARNING, logger="ezclip.data.text")
    texts = class_texts(
        NAMES, "descriptions", templates=["a video of {}."], descriptions_csv=csv, on_missing="templates"
    )
    assert texts == [["Eyes."], ["Up."], ["a video of Yo Yo."]]
    assert "Yo Yo" in caplog.text and "templates" in caplog.text


def test_bad_header_and_bad_arguments(tmp_path):
    with pytest.raises(DescriptionsError, match="header"):
        read_descriptions(write(tmp_path / "d.csv", "class,text\na,b\n"))
    with pytest.raises(ValueError, match="source"):
        class_texts(NAMES, "captions")
    with pytest.raises(ValueError, match="on_missing"):
        class_texts(NAMES, "names", on_missing="skip")
    with pytest.raises(ValueError, match="descriptions CSV"):
        class_texts(NAMES, "descriptions")


@pytest.mark.parametrize("second", ["jump", "Jump", "jump_"])
def test_two_classes_with_one_name_are_refused(tmp_path, second):
    # Both would get the same class text: one of them could never be predicted.
    labels = write(tmp_path / "labels.csv", f"id,name\n0,jump\n1,run\n2,{second}\n")
    with pytest.raises(ListFormatError, match=r"classes 0 \('jump'\) and 2 .* have the same name"):
        read_labels(labels)


def test_validation_carved_from_training_is_stratified_seeded_and_disjoint():
    from ezclip.data.lists import split_validation

    entries = [VideoEntry(f"c{c}/v{i}.mp4", c) for c in range(3) for i in range(10)] + [VideoEntry("lone.mp4", 3)]
    train, val = split_validation(entries, 0.2, seed=7)
    assert sorted(e.label for e in val) == [0, 0, 1, 1, 2, 2]  # 20% of each class; a lone video stays in training
    assert not {e.path for e in train} & {e.path for e in val} and len(train) + len(val) == len(entries)
    assert split_validation(entries, 0.2, seed=7) == (train, val)
    assert split_validation(entries, 0.2, seed=8)[1] != val
    _, per_class = split_validation(entries, 3, seed=7)
    assert sorted(e.label for e in per_class) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="val_from_train"):
        split_validation(entries, 0, seed=7)
