import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import NearestCentroid

from fashioncomp import synth
from fashioncomp.data.schema import Schema
from fashioncomp.synth import generate_dataset, main

REPO = Path(__file__).resolve().parents[1]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def attr_sets(rows: list[dict[str, str]]) -> list[list[int]]:
    return [[int(t) for t in r["attribute_label"].split()] for r in rows]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "ds", n_train=400, n_test=20, seed=1, workers=1)


def test_layout_and_headers(dataset):
    assert sorted(p.name for p in dataset.iterdir()) == ["images", "schema.json", "test.csv", "train.csv"]
    assert (dataset / "train.csv").read_text().splitlines()[0] == "file_path,category_label,attribute_label"
    assert (dataset / "test.csv").read_text().splitlines()[0] == "file_path"
    train, test = read_rows(dataset / "train.csv"), read_rows(dataset / "test.csv")
    assert len(train) == 400 and len(test) == 20
    assert train[0]["file_path"] == "images/train/00001.jpg"
    assert test[-1]["file_path"] == "images/test/00020.jpg"
    listed = {r["file_path"] for r in train + test}
    on_disk = {p.relative_to(dataset).as_posix() for p in (dataset / "images").rglob("*") if p.is_file()}
    assert listed == on_disk
    # Nothing left over from the temporary build directory.
    assert [p.name for p in dataset.parent.iterdir()] == ["ds"]


def test_schema_loads_and_matches_labels(dataset):
    schema = Schema.load(dataset / "schema.json")
    assert schema.num_categories >= 8 and 12 <= schema.num_attributes <= 18
    assert {g.name: g.type for g in schema.groups} == {
        "colour": "multiclass", "pattern": "multiclass", "parts": "multilabel", "gender": "multiclass"}
    rows = read_rows(dataset / "train.csv")
    cats = [int(r["category_label"]) for r in rows]
    assert all(0 <= c < schema.num_categories for c in cats)
    for attrs in attr_sets(rows):
        assert attrs == sorted(set(attrs))  # ascending, no duplicates
        assert all(0 <= a < schema.num_attributes for a in attrs)
        for group in schema.multiclass_groups:
            assert len(set(attrs) & set(group.indices)) <= 1, group.name
    # Every attribute occurs, and so do images without colour / pattern labels.
    counts = np.bincount([a for attrs in attr_sets(rows) for a in attrs], minlength=schema.num_attributes)
    assert (counts > 0).all()
    for name in ("colour", "pattern"):
        group = next(g for g in schema.groups if g.name == name)
        assert any(not set(attrs) & set(group.indices) for attrs in attr_sets(rows)), name


def test_every_category_present_and_skewed(dataset):
    rows = read_rows(dataset / "train.csv")[:300]
    counts = np.bincount([int(r["category_label"]) for r in rows], minlength=len(synth.CATEGORIES))
    assert (counts > 0).all(), counts
    assert counts.max() >= 2 * counts.min()


def test_images_are_rgb_of_requested_size(dataset, tmp_path):
    for rel in ("images/train/00001.jpg", "images/train/00400.jpg", "images/test/00007.jpg"):
        with Image.open(dataset / rel) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (64, 64))
    big = generate_dataset(tmp_path / "big", n_train=3, n_test=1, image_size=128)
    for path in (big / "images").rglob("*.jpg"):
        with Image.open(path) as im:
            assert (im.mode, im.size) == ("RGB", (128, 128))


def snapshot(root: Path) -> tuple[bytes, bytes, list[bytes]]:
    images = sorted((root / "images").rglob("*.jpg"))
    pixels = [np.asarray(Image.open(p)).tobytes() for p in images]
    return (root / "train.csv").read_bytes(), (root / "test.csv").read_bytes(), pixels


def test_deterministic_given_seed(tmp_path):
    a = snapshot(generate_dataset(tmp_path / "a", n_train=24, n_test=4, seed=5, workers=1))
    b = snapshot(generate_dataset(tmp_path / "b", n_train=24, n_test=4, seed=5, workers=2))
    c = snapshot(generate_dataset(tmp_path / "c", n_train=24, n_test=4, seed=6, workers=1))
    assert a == b  # same seed, serial vs parallel: identical
    assert a[0] != c[0] and a[2] != c[2]


def test_refuses_existing_dataset_unless_forced(tmp_path, capsys):
    out = tmp_path / "ds"
    generate_dataset(out, n_train=4, n_test=1, seed=0)
    before = snapshot(out)
    with pytest.raises(FileExistsError, match="force"):
        generate_dataset(out, n_train=4, n_test=1, seed=1)
    assert main(["--out", str(out), "--n-train", "4", "--n-test", "1"]) == 2
    assert "--force" in capsys.readouterr().err
    assert snapshot(out) == before  # untouched

    assert main(["--out", str(out), "--n-train", "6", "--n-test", "2", "--seed", "3", "--force"]) == 0
    assert len(read_rows(out / "train.csv")) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp / old directories left


def test_target_directory_rules(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate_dataset(empty, n_train=2, n_test=0) == empty.absolute()
    assert read_rows(empty / "test.csv") == []

    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a dataset"):
        generate_dataset(unrelated, n_train=2, n_test=0, force=True)
    assert (unrelated / "notes.txt").read_text() == "keep me"

    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "bad", n_train=0, n_test=1)
    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "bad", n_train=2, n_test=1, image_size=8)
    assert not (tmp_path / "bad").exists()


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real_run_job = synth._run_job

    def flaky(job):
        calls.append(job)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real_run_job(job)

    monkeypatch.setattr(synth, "_run_job", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "ds", n_train=10, n_test=2, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_cli_entry_point(tmp_path):
    cmd = [sys.executable, "-m", "fashioncomp.synth", "--out", str(tmp_path / "ds"), "--n-train", "5", "--n-test", "2"]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2 and "already holds a dataset" in again.stderr


def test_every_part_a_category_can_have_is_drawable():
    rng = np.random.default_rng(0)
    anchors = {"collar": "neck", "pocket": "pockets", "buttons": "placket", "logo": "logo", "belt": "waist"}
    assert set(synth.SHAPES) == set(synth.CATEGORIES)
    for category, probs in synth.PART_PROBS.items():
        for women in (False, True):
            garment = synth.SHAPES[category](rng, women)
            for part in probs:
                assert getattr(garment, anchors[part]), (category, women, part)


def test_pixels_carry_category_and_colour(dataset):
    """A nearest-centroid classifier on 16x16 thumbnails beats the majority class clearly."""
    rows = read_rows(dataset / "train.csv")
    x = np.stack([np.asarray(Image.open(dataset / r["file_path"]).resize((16, 16), Image.BILINEAR),
                             dtype=np.float32).ravel() / 255 for r in rows])
    colour_ids = [synth.ATTRIBUTE_INDEX[c] for c in synth.COLOURS]
    colour = np.array([next((k for k, c in enumerate(colour_ids) if c in attrs), len(colour_ids))
                       for attrs in attr_sets(rows)])
    category = np.array([int(r["category_label"]) for r in rows])
    train, held_out = slice(0, 300), slice(300, 400)
    for name, y in (("category", category), ("colour", colour)):
        majority = (y[held_out] == np.bincount(y[train]).argmax()).mean()
        accuracy = NearestCentroid().fit(x[train], y[train]).score(x[held_out], y[held_out])
        assert accuracy > majority + 0.15, (name, accuracy, majority)
