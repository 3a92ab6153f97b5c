"""Class names (issue 13, item 6): --labels FILE|imagenet on export, names printed by classify,
and a label count that differs from the class count refused before anything is written."""
import numpy as np
import pytest
from PIL import Image

from mbv2_engine import Engine, InputError
from mbv2_engine.cli import main
from mbv2_engine.labels import read_labels

EXPORT = ["export", "--random", "--width", "0.35", "--size", "64", "--quiet"]


def test_imagenet_names_ship_in_the_standard_order():
    names = read_labels("imagenet")
    assert len(names) == 1000 and len(set(names)) == 999  # ILSVRC names two synsets "crane": bird, machine
    assert names[134] == names[517] == "crane"
    assert names[0] == "tench, Tinca tinca" and names[1] == "goldfish, Carassius auratus"
    assert names[207] == "golden retriever" and names[999] == "toilet tissue, toilet paper, bathroom tissue"


def test_a_labels_file_is_one_name_a_line(tmp_path):
    (tmp_path / "l.txt").write_bytes(b"cat\r\ndog, puppy\r\n\xc3\xa9lan\n")  # CRLF, commas, UTF-8
    assert read_labels(tmp_path / "l.txt") == ["cat", "dog, puppy", "élan"]


@pytest.mark.parametrize("content, message", [(b"cat\n\ndog\n", "line 2 is blank"), (b"", "it is empty"),
                                              (b"\xff\xfe", "UTF-8")])
def test_bad_labels_files_are_refused(tmp_path, content, message):
    (tmp_path / "l.txt").write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_labels(tmp_path / "l.txt")
    with pytest.raises(InputError, match="does not exist"):
        read_labels(tmp_path / "missing.txt")


def test_export_with_labels_and_classify_prints_them(tmp_path, capsys):
    (tmp_path / "l.txt").write_text("red thing\ngreen thing\nblue thing\n")
    model = tmp_path / "m.npz"
    assert main(EXPORT + ["--num-classes", "3", "--labels", str(tmp_path / "l.txt"), "-o", str(model)]) == 0
    assert Engine.load(model).labels == ["red thing", "green thing", "blue thing"]
    Image.fromarray(np.full((80, 90, 3), 200, np.uint8)).save(tmp_path / "p.png")
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "p.png"), "--model", str(model), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("red thing", "green thing", "blue thing")), out


def test_export_with_imagenet_labels(tmp_path):
    assert main(EXPORT + ["--labels", "imagenet", "-o", str(tmp_path / "m.npz")]) == 0
    assert Engine.load(tmp_path / "m.npz").labels == read_labels("imagenet")


def test_a_label_count_other_than_the_class_count_is_refused(tmp_path, capsys):
    (tmp_path / "l.txt").write_text("one\ntwo\n")
    assert main(EXPORT + ["--num-classes", "3", "--labels", str(tmp_path / "l.txt"),
                          "-o", str(tmp_path / "m.npz")]) == 2
    assert "2 labels for a model of 3 classes" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()
