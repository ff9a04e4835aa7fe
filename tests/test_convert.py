"""Input converters: a tiny DeepFashion-layout sample (the release's file formats, generated here)
and generic CSV / JSON tables convert into this project's layout with linked images, from a
read-only source; the converted DeepFashion sample runs through the whole pipeline; bad input is
one error line naming the file, the line and the problem."""
from __future__ import annotations

import contextlib
import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashioncomp.convert import CONVERTERS, ConvertError, convert
from fashioncomp.convert.__main__ import main as convert_main
from fashioncomp.convert.vocabulary import Vocabulary, unique_names
from fashioncomp.data.dataset_reader import read_test, read_train
from fashioncomp.data.schema import Schema

REPO = Path(__file__).resolve().parents[1]

# listed categories (id = position + 1) with their type; ids 2 and 5 have no images
CATEGORIES = [("Anorak", 1), ("Blazer", 1), ("Cutoffs", 2), ("Dress", 3), ("Kimono", 3)]
USED_CATEGORY_IDS = (1, 3, 4)
FOLDERS = {1: "Hooded_Anorak", 3: "Denim_Cutoffs", 4: "Floral_Maxi_Dress"}
ATTRIBUTES = [("floral print", 1), ("stripe", 1), ("denim", 2), ("a-line", 3), ("boho", 5)]
GROUP_OF = ["texture", "texture", "fabric", "shape", "style"]
N_IMAGES = 16
PARTITION = {**{i: "train" for i in range(1, 11)}, **{i: "val" for i in range(11, 14)},
             **{i: "test" for i in range(14, 17)}}
# 0 = unknown labels: image 2 one texture label, image 5 every label, image 7 shape and style
UNKNOWN = {2: [0], 5: [0, 1, 2, 3, 4], 7: [3, 4]}
NO_ATTRIBUTE = 4  # every label -1


def image_name(i: int) -> str:
    return f"img/{FOLDERS[category_id(i)]}/img_{i:08d}.jpg"


def category_id(i: int) -> int:
    return USED_CATEGORY_IDS[i % 3]


def attribute_values(i: int) -> list[int]:
    values = [1 if (i + j) % 3 == 0 and i != NO_ATTRIBUTE else -1 for j in range(len(ATTRIBUTES))]
    for j in UNKNOWN.get(i, []):
        values[j] = 0
    return values


def write_list(path: Path, header: str, rows: list[str], count: int | None = None) -> None:
    """A DeepFashion list: the count line, the header line, then padded whitespace-separated rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{len(rows) if count is None else count}\n{header}\n" + "".join(r + "\n" for r in rows))


def make_deepfashion(root: Path) -> Path:
    """The benchmark's layout: Anno/ lists, Eval/list_eval_partition.txt, Img/img/<folder>/*.jpg."""
    rng = np.random.default_rng(0)
    for i in range(1, N_IMAGES + 1):
        path = root / "Img" / image_name(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)  # not square, as the release's
        Image.fromarray(pixels).save(path, quality=90)
    names = [image_name(i) for i in range(1, N_IMAGES + 1)]
    write_list(root / "Anno" / "list_category_cloth.txt", "category_name  category_type",
               [f"{name:<30}{kind}" for name, kind in CATEGORIES])
    write_list(root / "Anno" / "list_attr_cloth.txt", "attribute_name  attribute_type",
               [f"{name:<29}{kind}" for name, kind in ATTRIBUTES])
    write_list(root / "Anno" / "list_category_img.txt", "image_name  category_label",
               [f"{n:<60}{category_id(i)}" for i, n in enumerate(names, start=1)])
    write_list(root / "Anno" / "list_attr_img.txt", "image_name  attribute_labels      5 entries",
               [f"{n:<60}" + " ".join(f"{v:>2}" for v in attribute_values(i)) for i, n in enumerate(names, start=1)])
    write_list(root / "Eval" / "list_eval_partition.txt", "image_name  evaluation_status",
               [f"{n:<60}{PARTITION[i]}" for i, n in enumerate(names, start=1)])
    return root


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def tree_state(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry's size, mode and modification time (a folder's changes when an entry is added)."""
    return {str(p.relative_to(root)): (s.st_size, s.st_mode, s.st_mtime_ns)
            for p in [root, *sorted(root.rglob("*"))] for s in [p.lstat()]}


@contextlib.contextmanager
def read_only(root: Path) -> Iterator[Path]:
    """The source as Kaggle mounts it: chmod -w (root writes through that, so the tree is also
    compared before and after: nothing under it may have been written, created or removed)."""
    _set_writable(root, False)
    before = tree_state(root)
    try:
        yield root
        assert tree_state(root) == before, f"something wrote into the read-only source {root}"
    finally:
        _set_writable(root, True)


@pytest.fixture(scope="module")
def deepfashion_src(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A read-only DeepFashion sample (do not modify: shared)."""
    with read_only(make_deepfashion(tmp_path_factory.mktemp("deepfashion") / "src")) as root:
        yield root


def converted_rows(dst: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    train = pd.read_csv(dst / "train.csv", dtype=str, keep_default_na=False)
    test = pd.read_csv(dst / "test.csv", dtype=str, keep_default_na=False) if (dst / "test.csv").exists() else None
    return train, test, json.loads((dst / "schema.json").read_text())


# ------------------------------------------------------------------------------------ DeepFashion


def test_deepfashion_honours_partition_categories_and_unknown_labels(deepfashion_src: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    dst = convert("deepfashion", deepfashion_src, tmp_path / "out")
    assert dst == tmp_path / "out"
    train, test, schema = converted_rows(dst)
    assert list(train["file_path"]) == [image_name(i) for i in range(1, 14)]  # train, then val (val_as=train)
    assert list(test["file_path"]) == [image_name(i) for i in range(14, 17)]
    # ids 1, 3, 4 are used: dense 0, 1, 2; their names and original ids in schema.json
    assert schema["categories"] == ["Anorak", "Cutoffs", "Dress"]
    assert schema["category_source_ids"] == [1, 3, 4]
    assert [int(c) for c in train["category_label"]] == [USED_CATEGORY_IDS.index(category_id(i)) for i in range(1, 14)]
    assert schema["attributes"] == [name for name, _ in ATTRIBUTES]
    assert schema["attribute_groups"] == {
        "texture": {"type": "multilabel", "attributes": ["floral print", "stripe"]},
        "fabric": {"type": "multilabel", "attributes": ["denim"]},
        "shape": {"type": "multilabel", "attributes": ["a-line"]},
        "style": {"type": "multilabel", "attributes": ["boho"]}}
    labels = dict(zip(train["file_path"], train["attribute_label"]))
    assert labels[image_name(1)] == "2"                   # (1 + 2) % 3 == 0: denim
    assert labels[image_name(2)] == "1 4 ?texture"        # floral print unknown: its group, not the stripe
    assert labels[image_name(NO_ATTRIBUTE)] == ""                    # all -1: no attribute, every label known
    assert labels[image_name(5)] == "?"                   # every group has an unknown label
    assert labels[image_name(7)] == "2 ?shape ?style"

    # what the pipeline reads: positives are the 1s; a label is unknown exactly where its group holds a 0
    data, read_schema = read_train(dst)
    assert read_schema == Schema.load(dst / "schema.json") and read_schema.num_categories == 3
    for row, i in enumerate(range(1, 14)):
        values = np.array(attribute_values(i))
        unknown_groups = {GROUP_OF[j] for j in np.flatnonzero(values == 0)}
        expected_known = (values == 1) | np.array([g not in unknown_groups for g in GROUP_OF])
        np.testing.assert_array_equal(data.attributes[row], values == 1)
        np.testing.assert_array_equal(data.attribute_known[row], expected_known)
    assert read_test(dst, check_exists=True) == [image_name(i) for i in range(14, 17)]

    # no image was copied: one link to the source's image folder
    assert (dst / "img").is_symlink() and (dst / "img").resolve() == (deepfashion_src / "Img" / "img").resolve()
    assert sorted(p.name for p in dst.iterdir()) == ["conversion.json", "img", "schema.json", "test.csv", "train.csv"]
    out = capsys.readouterr().out
    assert "13 train rows, 3 test rows" in out and "3 of the 5 listed" in out and "unknown (0) attribute labels" in out


@pytest.mark.parametrize("val_as,n_train,n_test", [("test", 10, 6), ("drop", 10, 3)])
def test_deepfashion_val_partition_option(deepfashion_src: Path, tmp_path: Path, val_as: str, n_train: int,
                                          n_test: int) -> None:
    assert convert_main(["deepfashion", str(deepfashion_src), str(tmp_path / "out"), "--val-as", val_as]) == 0
    train, test, _ = converted_rows(tmp_path / "out")
    assert len(train) == n_train and len(test) == n_test
    assert set(train["file_path"]) == {image_name(i) for i in range(1, 11)}
    assert (image_name(12) in set(test["file_path"])) is (val_as == "test")


@pytest.mark.usefixtures("one_thread")
def test_converted_deepfashion_runs_end_to_end(deepfashion_src: Path, tmp_path: Path) -> None:
    from fashioncomp.make_submission import make_submission
    from fashioncomp.pipeline import (init_run, stage_oof, stage_predict, stage_split, stage_thresholds,
                                      stage_train)

    data_root = convert("deepfashion", deepfashion_src, tmp_path / "data")
    run = init_run(tmp_path / "runs" / "df", data_root, None,
                   ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=1",
                    "train.batch_size=8", "train.threads=1"])
    stage_split(run)
    stage_train(run, progress=False)
    stage_oof(run)
    stage_thresholds(run)
    stage_predict(run)
    out = make_submission(run, tmp_path / "subs")

    test_paths = read_test(data_root)
    category = pd.read_csv(out / "category.csv", keep_default_na=False)
    attribute = pd.read_csv(out / "attribute.csv", keep_default_na=False, dtype=str)
    assert list(category["file_path"]) == test_paths == list(attribute["file_path"])
    assert category["category_label"].between(0, 2).all()
    for text in attribute["attribute_label"]:
        assert all(0 <= int(t) < len(ATTRIBUTES) for t in text.split())


# ------------------------------------------------------------------------------------ CSV / JSON


def make_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.new("RGB", (8, 8), (k * 20, 0, 0)).save(folder / name)


def table_rows() -> list[dict]:
    return [
        {"id": "a1", "label": "shirt", "tags": "red, striped", "split": "train"},
        {"id": "a2", "label": "dress", "tags": "blue", "split": "train"},
        {"id": "a3", "label": "", "tags": "", "split": "train"},           # category unknown, no attribute
        {"id": "a4", "label": "shirt", "tags": "?", "split": "val"},       # dropped
        {"id": "a5", "label": "10", "tags": "red blue", "split": "train"},
        {"id": "b1", "label": "dress", "tags": "red", "split": "test"},
    ]


def test_csv_converter_maps_columns_names_and_splits(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_images(src / "photos", [f"{r['id']}.png" for r in table_rows()])
    pd.DataFrame(table_rows()).to_csv(src / "labels.csv", index=False)
    with read_only(src):
        convert("csv", src, tmp_path / "out", table="labels.csv", image_col="id", category_col="label",
                attributes_col="tags", image_pattern="{}.png", images="photos", split_col="split",
                drop_values="val")
    train, test, schema = converted_rows(tmp_path / "out")
    # names -> dense ids in sorted order, ids ("10") before names
    assert schema["categories"] == ["10", "dress", "shirt"] and schema["attributes"] == ["blue", "red", "striped"]
    assert train.values.tolist() == [["photos/a1.png", "2", "1 2"], ["photos/a2.png", "1", "0"],
                                     ["photos/a3.png", "-1", ""], ["photos/a5.png", "0", "0 1"]]
    assert test["file_path"].tolist() == ["photos/b1.png"]
    assert (tmp_path / "out" / "photos").is_symlink()
    data, _ = read_train(tmp_path / "out")
    assert data.categories.tolist() == [2, 1, -1, 0]


@pytest.mark.parametrize("layout", ["records", "images_object", "json_lines"])
def test_json_converter_reads_records_objects_and_json_lines(tmp_path: Path, layout: str) -> None:
    src = tmp_path / "src"
    train = [{"file": "x1.jpg", "category": 3, "attributes": ["sleeve", "collar"]},
             {"file": "x2.jpg", "category": 1, "attributes": []},
             {"file": "x3.jpg", "category": 3, "attributes": None},         # unknown attributes
             {"file": "x4.jpg", "category": None, "attributes": ["collar"]}]
    make_images(src / "train", [r["file"] for r in train])
    make_images(src / "test", ["y1.jpg", "y2.jpg"])
    texts = {"records": json.dumps(train), "images_object": json.dumps({"info": {}, "images": train}),
             "json_lines": "\n".join(json.dumps(r) for r in train) + "\n"}
    (src / "train.json").write_text(texts[layout])
    (src / "test.json").write_text(json.dumps([{"file": "y1.jpg"}, {"file": "y2.jpg"}]))
    with read_only(src):
        assert convert_main(["json", str(src), str(tmp_path / "out"), "--image-col", "file", "--category-col",
                             "category", "--attributes-col", "attributes", "--images", "train",
                             "--test-table", "test.json", "--test-images", "test"]) == 0
    train_csv, test_csv, schema = converted_rows(tmp_path / "out")
    assert schema["categories"] == ["1", "3"] and schema["attributes"] == ["collar", "sleeve"]
    assert train_csv.values.tolist() == [["train/x1.jpg", "1", "0 1"], ["train/x2.jpg", "0", ""],
                                         ["train/x3.jpg", "1", "?"], ["train/x4.jpg", "-1", "0"]]
    assert test_csv["file_path"].tolist() == ["test/y1.jpg", "test/y2.jpg"]
    data, _ = read_train(tmp_path / "out")
    assert not data.attribute_known[2].any() and data.attribute_known[[0, 1, 3]].all()
    assert read_test(tmp_path / "out", check_exists=True) == ["test/y1.jpg", "test/y2.jpg"]


def test_command_line_links_images_at_the_source_root_one_by_one(tmp_path: Path) -> None:
    """As a kernel runs it: `python -m fashioncomp.convert NAME SRC DST [options]`."""
    src = tmp_path / "src"
    make_images(src, ["p1.jpg", "p2.jpg"])
    (src / "t.csv").write_text("image,cat,attrs\np1.jpg,a,x\np2.jpg,b,y\n")
    done = subprocess.run([sys.executable, "-m", "fashioncomp.convert", "csv", str(src), str(tmp_path / "out"),
                           "--table", "t.csv", "--image-col", "image", "--category-col", "cat", "--attributes-col",
                           "attrs"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "convert csv: 2 train rows, 0 test rows" in done.stdout
    assert [(tmp_path / "out" / n).is_symlink() for n in ("p1.jpg", "p2.jpg")] == [True, True]
    assert not (tmp_path / "out" / "test.csv").exists()
    read_train(tmp_path / "out")


def test_dense_ids_keep_numeric_order_and_schema_names_are_unique() -> None:
    assert Vocabulary(["10", "2", "-1", "b", "a", "2"]).names == ("-1", "2", "10", "a", "b")
    assert unique_names(["lace", "knit", "lace", "lace"]) == ["lace", "knit", "lace (2)", "lace (3)"]


# ------------------------------------------------------------------------------------ DST handling


def test_destination_holding_another_dataset_needs_force(deepfashion_src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    convert("deepfashion", deepfashion_src, dst)
    convert("deepfashion", deepfashion_src, dst)  # the same conversion again: rewritten
    with pytest.raises(ConvertError, match=r"already holds a dataset converted by 'deepfashion' .* with other "
                                           r"options \(val_as\); pass --force"):
        convert("deepfashion", deepfashion_src, dst, val_as="drop")
    assert len(pd.read_csv(dst / "train.csv")) == 13  # untouched
    convert("deepfashion", deepfashion_src, dst, force=True, val_as="drop")
    assert len(pd.read_csv(dst / "train.csv")) == 10

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConvertError, match=r"files this converter did not write \(notes.txt\)"):
        convert("deepfashion", deepfashion_src, foreign)
    (foreign / "img").mkdir()
    with pytest.raises(ConvertError, match=r"mine/img is in the way of the image link img -> .* and is not a link"):
        convert("deepfashion", deepfashion_src, foreign, force=True)
    assert (foreign / "notes.txt").read_text() == "keep me" and not (foreign / "train.csv").exists()

    # replaced by a conversion without test rows and other image folders: the old links and test.csv go
    other = tmp_path / "other"
    make_images(other / "photos", ["q.jpg"])
    (other / "t.csv").write_text("image,cat,attrs\nphotos/q.jpg,a,x\n")
    convert("csv", other, dst, force=True, table="t.csv", image_col="image", category_col="cat", attributes_col="attrs")
    assert sorted(p.name for p in dst.iterdir()) == ["conversion.json", "photos", "schema.json", "train.csv"]
    assert json.loads((dst / "conversion.json").read_text())["converter"] == "csv"


def test_python_api_checks_converter_and_options(deepfashion_src: Path, tmp_path: Path) -> None:
    assert set(CONVERTERS) >= {"deepfashion", "csv", "json"}
    with pytest.raises(ConvertError, match="unknown converter 'coco'; choose one of csv, deepfashion, json"):
        convert("coco", deepfashion_src, tmp_path / "out")
    with pytest.raises(ConvertError, match="unknown option.* val; options: val_as, images"):
        convert("deepfashion", deepfashion_src, tmp_path / "out", val="test")
    with pytest.raises(ConvertError, match="val_as is 'holdout'; choose one of train, test, drop"):
        convert("deepfashion", deepfashion_src, tmp_path / "out", val_as="holdout")
    with pytest.raises(ConvertError, match="option image_col .* is required"):
        convert("csv", deepfashion_src, tmp_path / "out", category_col="c", attributes_col="a")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ bad input


def _edit_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _drop_image(root: Path, i: int) -> None:
    (root / "Img" / image_name(i)).unlink()


BAD_DEEPFASHION = {
    "count line": (lambda r: _edit_line(r / "Anno" / "list_category_img.txt", 1, "17"),
                   r"Anno/list_category_img.txt line 1: says 17 rows, but the file has 16$"),
    "count not a number": (lambda r: _edit_line(r / "Anno" / "list_attr_cloth.txt", 1, "five"),
                           r"Anno/list_attr_cloth.txt line 1: expected the number of rows, got 'five'$"),
    "header": (lambda r: _edit_line(r / "Eval" / "list_eval_partition.txt", 2, "image_name status"),
               r"Eval/list_eval_partition.txt line 2: expected the column names 'image_name evaluation_status'"),
    "unknown image": (lambda r: _edit_line(r / "Anno" / "list_category_img.txt", 6, "img/Other/img_00000099.jpg 1"),
                      r"Anno/list_category_img.txt line 6: unknown image 'img/Other/img_00000099.jpg': it is not in "
                      r"list_eval_partition.txt$"),
    "label value": (lambda r: _edit_line(r / "Anno" / "list_attr_img.txt", 4, f"{image_name(2)} 1 -1 2 -1 -1"),
                    r"Anno/list_attr_img.txt line 4: attribute label '2' \(attribute 3\) is not -1, 0 or 1$"),
    "label count": (lambda r: _edit_line(r / "Anno" / "list_attr_img.txt", 3, f"{image_name(1)} 1 -1"),
                    r"Anno/list_attr_img.txt line 3: 2 attribute labels, expected 5"),
    "category id": (lambda r: _edit_line(r / "Anno" / "list_category_img.txt", 5, f"{image_name(3)} 6"),
                    r"Anno/list_category_img.txt line 5: category label '6' is not an id 1..5"),
    "image without labels": (lambda r: write_list(r / "Anno" / "list_category_img.txt",
                                                  "image_name  category_label",
                                                  [f"{image_name(i)} {category_id(i)}"
                                                   for i in range(1, N_IMAGES + 1) if i != 6]),
                             rf".*list_eval_partition.txt line 8: image '{re.escape(image_name(6))}' has no row in "
                             r".*list_category_img.txt \(1 image\(s\) of the partition have none\)$"),
    "partition": (lambda r: _edit_line(r / "Eval" / "list_eval_partition.txt", 3, f"{image_name(1)} holdout"),
                  r"Eval/list_eval_partition.txt line 3: evaluation status 'holdout' is not one of train, val, test$"),
    "missing images": (lambda r: [_drop_image(r, i) for i in (3, 4, 6, 8, 9, 10, 15)],
                       rf"7 of 16 listed images are missing under .*/Img: '{re.escape(image_name(3))}' "
                       r"\(.*list_eval_partition.txt line 5\), .* and 2 more$"),
    "no annotations": (lambda r: (r / "Anno" / "list_attr_img.txt").unlink(),
                       r"list_attr_img.txt not found in .*/src, .*/src/Anno, .*/src/Anno_coarse, .*/src/Eval \(is SRC"),
}


@pytest.mark.parametrize("case", sorted(BAD_DEEPFASHION))
def test_bad_deepfashion_input_is_one_error_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = make_deepfashion(tmp_path / "src")
    damage, message = BAD_DEEPFASHION[case]
    damage(src)
    assert convert_main(["deepfashion", str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(message, err.strip()), err
    assert not (tmp_path / "out").exists()  # nothing written before the source is known good


BAD_TABLES = {
    "missing column": (["--category-col", "kind"], r"labels.csv: no column 'kind' \(--category-col\); columns: "),
    "images outside": (["--images", ".."], r"--images \.\.: must be a folder inside SRC"),
    "split value": (["--split-col", "split"], r"labels.csv line 5: split 'val' in column 'split' is none of "
                                              r"--train-values train; --test-values test; --drop-values \(none\)"),
    "missing image": (["--image-pattern", "{}.jpg"], r"6 of 6 listed images are missing under .*src: "
                                                      r"'photos/a1.jpg' \(.*labels.csv line 2\)"),
    "ragged row": (None, r"labels.csv line 3: 5 fields but the header has 4 \(a comma inside a value needs quotes\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_table_input_is_one_error_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "src"
    make_images(src / "photos", [f"{r['id']}.png" for r in table_rows()])
    pd.DataFrame(table_rows()).to_csv(src / "labels.csv", index=False)
    extra, message = BAD_TABLES[case]
    if extra is None:
        _edit_line(src / "labels.csv", 3, "a2,dress,blue,train,extra")
    args = {"--image-col": "id", "--category-col": "label", "--attributes-col": "tags", "--images": "photos",
            "--image-pattern": "{}.png"}
    args.update(dict(zip((extra or [])[::2], (extra or [])[1::2])))
    argv = ["csv", str(src), str(tmp_path / "out"), "--table", "labels.csv"] + [x for kv in args.items() for x in kv]
    assert convert_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(message, err.strip()), err


def test_bad_json_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.json").write_text('{"file": "a.jpg", "c": 1, "a": []}\n{"file": "b.jpg", "c": 1,\n')
    assert convert_main(["json", str(tmp_path / "src"), str(tmp_path / "out"), "--image-col", "file",
                         "--category-col", "c", "--attributes-col", "a"]) == 2
    assert "train.json line 2: not valid JSON (Expecting property name enclosed in double quotes)" in \
        capsys.readouterr().err
