"""Attribute groups found in the labels when the schema declares none."""
import json

import numpy as np
import pytest

from fashioncomp.data.dataset_reader import read_train
from fashioncomp.data.group_discovery import describe_groups, discover_groups, with_discovered_groups
from fashioncomp.data.schema import Schema
from fashioncomp.pipeline import Run, init_run, resolve_at_least_one
from fashioncomp.tasks import build_tasks, encode_targets


def labels_with_groups(n=3000, seed=0, noise=0.0):
    """Columns 0-1 gender (always one), 2-6 colour (one or none), 7-9 usage (one), 10-12 free tags."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, 13), dtype=np.uint8)
    y[np.arange(n), rng.choice(2, n, p=[0.6, 0.4])] = 1
    colour = rng.choice(6, n, p=[0.3, 0.25, 0.2, 0.1, 0.05, 0.1])  # 5 = no listed colour
    has = colour < 5
    y[np.flatnonzero(has), 2 + colour[has]] = 1
    y[np.arange(n), 7 + rng.choice(3, n, p=[0.7, 0.2, 0.1])] = 1
    y[:, 10:13] = rng.random((n, 3)) < [0.3, 0.2, 0.1]  # independent multilabel tags
    if noise:
        flip = rng.random(y.shape) < noise
        y = np.where(flip, 1 - y, y).astype(np.uint8)
    return y


def test_finds_the_known_groups_and_leaves_free_tags_alone():
    assert discover_groups(labels_with_groups()) == [(0, 1), (2, 3, 4, 5, 6), (7, 8, 9)]


def test_tolerates_label_noise_within_the_tolerance():
    y = labels_with_groups(noise=0.001)  # 3 flips per attribute: up to 2% of a rare colour's images clash
    assert discover_groups(y, tolerance=0.0) != [(0, 1), (2, 3, 4, 5, 6), (7, 8, 9)]  # strict breaks on noise
    assert discover_groups(y, tolerance=0.05) == [(0, 1), (2, 3, 4, 5, 6), (7, 8, 9)]


def test_independent_attributes_are_no_group():
    rng = np.random.default_rng(1)
    y = (rng.random((2000, 8)) < rng.uniform(0.05, 0.5, 8)).astype(np.uint8)
    assert discover_groups(y) == []


def test_rare_attributes_that_never_meet_by_chance_are_no_group():
    y = np.zeros((1000, 3), dtype=np.uint8)
    y[:4, 0] = 1       # 4 and 3 positives: independent, they would meet on 0.012 images
    y[10:13, 1] = 1
    y[::2, 2] = 1      # common, meets both
    y[0, 2] = y[10, 2] = 1
    assert discover_groups(y) == []
    assert discover_groups(y, min_evidence=0.0) == [(0, 1)]


def test_unknown_rows_are_not_counted():
    y = labels_with_groups(n=1000)
    known = np.ones_like(y, dtype=bool)
    y[:50, 0] = y[:50, 1] = 1  # clashes, but on rows whose labels are unknown
    known[:50] = False
    assert discover_groups(y, known)[0] == (0, 1)
    assert (0, 1) not in discover_groups(y)


def test_declared_groups_win_and_discovered_ones_round_trip_through_json():
    y = labels_with_groups(n=1000)
    plain = Schema.default(2, 13)
    found = with_discovered_groups(plain, y, None, 0.01, 5.0)
    assert [g.indices for g in found.groups] == [(0, 1), (2, 3, 4, 5, 6), (7, 8, 9)]
    assert all(g.discovered and g.is_multiclass for g in found.groups)
    again = Schema.from_dict(json.loads(json.dumps(found.to_dict())))
    assert again == found
    assert with_discovered_groups(again.without_groups(), y, None, 0.01, 5.0) == found
    declared = Schema.from_dict({**plain.to_dict(), "attribute_groups": {"g": {"type": "multiclass",
                                                                              "attributes": [0, 1, 2]}}})
    assert with_discovered_groups(declared, y, None, 0.01, 5.0) is declared
    assert describe_groups(found)[0] == "group1 (multiclass, found in the labels): attribute_0, attribute_1"


def write_dataset(root, y, with_schema=None):
    from PIL import Image

    (root / "img").mkdir(parents=True)
    rows = []
    for i, labels in enumerate(y):
        Image.new("RGB", (8, 8), (i % 255, 0, 0)).save(root / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{i % 2},{' '.join(str(j) for j in np.flatnonzero(labels))}")
    (root / "train.csv").write_text("file_path,category_label,attribute_label\n" + "\n".join(rows) + "\n")
    if with_schema:
        (root / "schema.json").write_text(json.dumps(with_schema))


def test_init_discovers_saves_and_takes_an_edited_schema_back(tmp_path, capsys):
    y = labels_with_groups(n=400, seed=3)
    y[0, 0] = y[0, 1] = 1  # one noisy row: tolerated in a discovered group, not in a declared one
    write_dataset(tmp_path / "data", y)
    run = init_run(tmp_path / "run", tmp_path / "data", None)
    out = capsys.readouterr().out
    assert "the schema declares no attribute groups; found 3 in the training labels" in out and "group2 (multiclass, found in the labels)" in out
    assert [g.indices for g in run.schema.groups] == [(0, 1), (2, 3, 4, 5, 6), (7, 8, 9)]
    saved = json.loads((tmp_path / "run" / "schema.json").read_text())
    assert saved["attribute_groups"]["group1"] == {"type": "multiclass", "attributes": ["attribute_0", "attribute_1"],
                                                   "discovered": True}
    targets, _ = encode_targets(run.train_data(), run.tasks)
    assert targets["group/group1"][0].tolist() == [0.5, 0.5, 0.0]  # the noisy row splits its mass
    assert np.all(targets["group/group1"] >= 0)

    # the user renames a group, drops another, and passes the file back
    saved["attribute_groups"] = {"gender": saved["attribute_groups"]["group1"]}
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(saved))
    run2 = init_run(tmp_path / "run2", tmp_path / "data", None, [f"data.schema={edited}"])
    assert [(g.name, g.indices) for g in run2.schema.groups] == [("gender", (0, 1))]
    assert [t.name for t in build_tasks(run2.schema)] == ["category", "group/gender", "attributes"]

    off = init_run(tmp_path / "run3", tmp_path / "data", None, ["data.discover_groups=false"])
    assert off.schema.groups == ()


def test_missing_override_schema_is_a_clear_error(tmp_path):
    write_dataset(tmp_path / "data", labels_with_groups(n=20))
    with pytest.raises(Exception, match="data.schema: file not found"):
        init_run(tmp_path / "run", tmp_path / "data", None, [f"data.schema={tmp_path / 'nope.json'}"])


def test_at_least_one_auto_follows_the_training_labels():
    y = labels_with_groups(n=50)
    data, _ = (type("D", (), {})(), None)
    data.attributes, data.attribute_known = y, np.ones_like(y, dtype=bool)
    assert resolve_at_least_one("auto", data) is True
    assert resolve_at_least_one(False, data) is False
    y2 = y.copy()
    y2[3] = 0
    data.attributes = y2
    assert resolve_at_least_one("auto", data) is False
    assert resolve_at_least_one(True, data) is True
    data.attribute_known = np.ones_like(y, dtype=bool)
    data.attribute_known[3] = False  # the empty row's labels are unknown: it does not count
    assert resolve_at_least_one("auto", data) is True
