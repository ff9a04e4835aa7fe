"""Submission formats: each one's exact bytes, its validation against test.csv (file, row and reason
named), no invalid file ever replacing a good one, the config keys and make_submission --format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashioncomp import cli, make_submission
from fashioncomp.config import CHOICES, ConfigError, load_config
from fashioncomp.data.dataset_reader import read_test
from fashioncomp.data.schema import Schema
from fashioncomp.io import write_json, write_npz
from fashioncomp.submission import (CODE_COMPETITION_FILE, IMAGE_IDS, LABEL_ID_STYLES, SUBMISSION_FORMATS,
                                    SubmissionError, SubmissionOptions, submission_files, submission_format,
                                    validate_submission, write_submission)

PATHS = ["img/a.jpg", "img/b.jpg", "img/c.jpg"]
CATEGORIES = np.array([2, 0, 1])
ATTRIBUTES = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
SCHEMA = Schema(("dress", "shirt", "skirt"), ("red", "blue", "long", "short"))

# the 3-row example in every format: file -> exact bytes
EXPECTED_BYTES = {
    "two_csv": {
        "category.csv": "file_path,category_label\nimg/a.jpg,2\nimg/b.jpg,0\nimg/c.jpg,1\n",
        "attribute.csv": "file_path,attribute_label\nimg/a.jpg,0 2\nimg/b.jpg,\nimg/c.jpg,1\n",
    },
    "single_csv": {
        "submission.csv": "file_path,category_label,attribute_label\nimg/a.jpg,2,0 2\nimg/b.jpg,0,\nimg/c.jpg,1,1\n",
    },
    "image_label_ids": {
        "submission.csv": "image_id,label_id\nimg/a.jpg,c2 a0 a2\nimg/b.jpg,c0\nimg/c.jpg,c1 a1\n",
    },
    "long": {
        "submission.csv": ("image_id,label_type,label_id\nimg/a.jpg,category,2\nimg/a.jpg,attribute,0\n"
                           "img/a.jpg,attribute,2\nimg/b.jpg,category,0\n"
                           "img/c.jpg,category,1\nimg/c.jpg,attribute,1\n"),
    },
}


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A dataset root with only the 3-row test.csv (the images are never opened)."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "test.csv").write_text("file_path\n" + "\n".join(PATHS) + "\n")
    return root


def _write(out: Path, options, categories=CATEGORIES, attributes=ATTRIBUTES, test_paths=PATHS) -> tuple[Path, ...]:
    return write_submission(out, PATHS, categories, attributes, schema=SCHEMA, test_paths=test_paths, options=options)


def _texts(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


# ------------------------------------------------------------------------------ what each format writes

@pytest.mark.parametrize("name", list(SUBMISSION_FORMATS))
def test_each_format_writes_its_exact_bytes_and_validates(name, data_root, tmp_path):
    written = _write(tmp_path / "sub", name)
    assert [p.name for p in written] == list(EXPECTED_BYTES[name]) == list(submission_files(name))
    assert {p.name: p.read_bytes().decode() for p in written} == EXPECTED_BYTES[name]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(EXPECTED_BYTES[name])  # no temporaries
    validate_submission(tmp_path / "sub", data_root, SCHEMA, name)


def test_two_csv_is_the_default_and_the_legacy_call_still_works(tmp_path):
    write_submission(tmp_path / "legacy", PATHS, CATEGORIES, ATTRIBUTES)  # as frontier's tests call it
    assert _texts(tmp_path / "legacy") == EXPECTED_BYTES["two_csv"]
    assert submission_files(load_config()) == ("category.csv", "attribute.csv")


@pytest.mark.parametrize("name", list(SUBMISSION_FORMATS))
def test_every_format_on_a_tiny_runs_predictions(name, tiny_dataset, tmp_path):
    """24 test images of the synthetic dataset, random predictions over its whole label space."""
    schema = Schema.load(tiny_dataset / "schema.json")
    paths = read_test(tiny_dataset)
    rng = np.random.default_rng(0)
    categories = rng.integers(0, schema.num_categories, len(paths))
    attributes = rng.random((len(paths), schema.num_attributes)) < 0.2
    out = tmp_path / name
    write_submission(out, paths, categories, attributes, schema=schema, test_paths=paths, options=name)
    validate_submission(out, tiny_dataset, schema, name)
    rows = pd.read_csv(out / submission_files(name)[0], dtype=str, keep_default_na=False)
    if name == "long":  # one category row per image, one row per predicted attribute
        assert len(rows) == len(paths) + int(attributes.sum())
        assert list(rows.loc[rows.label_type == "category", "label_id"].astype(int)) == list(categories)
    else:
        assert list(rows.iloc[:, 0]) == paths


def test_image_ids_label_ids_and_headers_are_configurable(data_root, tmp_path):
    options = SubmissionOptions(format="image_label_ids", image_id="stem", label_ids="offset",
                                columns={"image_id": "ImageId", "label_id": "Predicted"})
    _write(tmp_path / "sub", options)
    # offset: 3 categories, so attribute j is 3 + j
    assert (tmp_path / "sub" / "submission.csv").read_text() == "ImageId,Predicted\na,2 3 5\nb,0\nc,1 4\n"
    validate_submission(tmp_path / "sub", data_root, SCHEMA, options)
    with pytest.raises(SubmissionError, match=r"header is 'ImageId,Predicted', expected 'image_id,label_id'"):
        validate_submission(tmp_path / "sub", data_root, SCHEMA, "image_label_ids")

    config = load_config(overrides=["submission.format=long", "submission.image_id=stem",
                                    "submission.columns.image_id=ImageId"])
    _write(tmp_path / "long", config)
    assert (tmp_path / "long" / "submission.csv").read_text().splitlines()[:3] == [
        "ImageId,label_type,label_id", "a,category,2", "a,attribute,0"]


def test_submission_files_and_code_competition_file():
    assert CODE_COMPETITION_FILE == "submission.csv"
    assert {name: submission_files(name) for name in SUBMISSION_FORMATS} == {
        "two_csv": ("category.csv", "attribute.csv"), "single_csv": (CODE_COMPETITION_FILE,),
        "image_label_ids": (CODE_COMPETITION_FILE,), "long": (CODE_COMPETITION_FILE,)}
    config = load_config(overrides=["submission.format=single_csv"])
    assert submission_files(config) == submission_files(config["submission"]) == (CODE_COMPETITION_FILE,)
    assert submission_files({"submission": {"format": "two_csv"}}) == ("category.csv", "attribute.csv")


# ------------------------------------------------------------------------------ validation

def _swap_lines(i: int, j: int):
    def edit(text: str) -> str:
        lines = text.splitlines()
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines) + "\n"
    return edit


def _drop_line(i: int):
    def edit(text: str) -> str:
        lines = text.splitlines()
        del lines[i]
        return "\n".join(lines) + "\n"
    return edit


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)
    return edit


TAMPERED = [  # (format, file, edit, message): the message names the file and (when there is one) the row
    ("two_csv", "category.csv", _swap_lines(1, 2),
     r"category.csv row 1 \(line 2\): file_path 'img/b.jpg' where test.csv row 1 has 'img/a.jpg'"),
    ("two_csv", "attribute.csv", _drop_line(3),
     r"attribute.csv: has 2 rows, test.csv has 3 \(first missing: 'img/c.jpg'\)"),
    ("two_csv", "category.csv", _replace("img/b.jpg,0", "img/b.jpg,3"),
     r"category.csv row 2 \(line 3\): category_label '3' is not a category index 0..2"),
    ("two_csv", "attribute.csv", _replace("img/a.jpg,0 2", "img/a.jpg,0 4"),
     r"attribute.csv row 1 \(line 2\): attribute_label '4' is not an attribute index 0..3"),
    ("two_csv", "attribute.csv", _replace("img/a.jpg,0 2", "img/a.jpg,0 x"),
     r"attribute.csv row 1 \(line 2\): attribute_label 'x' is not an attribute index"),
    ("two_csv", "category.csv", _replace("file_path,category_label", "path,category_label"),
     r"category.csv: header is 'path,category_label', expected 'file_path,category_label'"),
    ("two_csv", "category.csv", _replace("img/c.jpg,1\n", "img/c.jpg,1\nimg/d.jpg,1\n"),
     r"category.csv row 4 \(line 5\): file_path 'img/d.jpg' is one row more than test.csv's 3"),
    ("single_csv", "submission.csv", _swap_lines(2, 3),
     r"submission.csv row 2 \(line 3\): file_path 'img/c.jpg' where"),
    ("single_csv", "submission.csv", _drop_line(1), r"submission.csv row 1 \(line 2\): file_path 'img/b.jpg' where"),
    ("single_csv", "submission.csv", _replace("img/c.jpg,1,1", "img/c.jpg,1,1 1"),
     r"submission.csv row 3 \(line 4\): attribute_label attribute '1' is listed twice"),
    ("single_csv", "submission.csv", _replace("img/c.jpg,1,1", "img/c.jpg,1"),
     r"submission.csv row 3 \(line 4\): has 2 fields, expected 3"),
    ("image_label_ids", "submission.csv", _replace("c2 a0 a2", "c2 a0 a9"),
     r"submission.csv row 1 \(line 2\): label_id 'a9': '9' is not an attribute index 0..3"),
    ("image_label_ids", "submission.csv", _replace("c0", "c0 c1"),
     r"submission.csv row 2 \(line 3\): label_id has 2 category ids, expected exactly 1"),
    ("image_label_ids", "submission.csv", _replace("c1 a1", "a1"), r"row 3 \(line 4\): label_id has 0 category ids"),
    ("image_label_ids", "submission.csv", _replace("c1 a1", "c1 blue"),
     r"row 3 \(line 4\): label_id 'blue' is not a label id \(c<category> or a<attribute>\)"),
    ("image_label_ids", "submission.csv", _swap_lines(1, 3), r"submission.csv row 1 \(line 2\): image_id 'img/c.jpg'"),
    ("long", "submission.csv", _swap_lines(4, 5),
     r"submission.csv row 4 \(line 5\): image_id 'img/c.jpg' starts an image where test.csv row 2 has 'img/b.jpg'"),
    ("long", "submission.csv", _replace("img/c.jpg,category,1\nimg/c.jpg,attribute,1\n", ""),
     r"submission.csv: has 2 images, test.csv has 3 \(first missing: 'img/c.jpg'\)"),
    ("long", "submission.csv", _replace("img/a.jpg,attribute,2", "img/a.jpg,attribute,4"),
     r"submission.csv row 3 \(line 4\): label_id '4' is not an attribute index 0..3"),
    ("long", "submission.csv", _replace("img/b.jpg,category,0", "img/b.jpg,category,3"),
     r"submission.csv row 4 \(line 5\): label_id '3' is not a category index 0..2"),
    ("long", "submission.csv", _replace("img/a.jpg,attribute,0", "img/a.jpg,colour,0"),
     r"submission.csv row 2 \(line 3\): label_type 'colour' is neither category nor attribute"),
    ("long", "submission.csv", _replace("img/a.jpg,attribute,0", "img/a.jpg,category,0"),
     r"submission.csv row 1 \(line 2\): image 'img/a.jpg' has 2 category rows, expected 1"),
    ("long", "submission.csv", _replace("img/a.jpg,attribute,2", "img/a.jpg,attribute,0"),
     r"submission.csv row 1 \(line 2\): image 'img/a.jpg' lists attribute 0 twice"),
    ("long", "submission.csv", _replace("img/c.jpg,attribute,1\n", "img/c.jpg,attribute,1\nimg/a.jpg,attribute,3\n"),
     r"submission.csv row 7 \(line 8\): image_id 'img/a.jpg' starts an image where test.csv has only 3 images"),
]


@pytest.mark.parametrize("name, file, edit, message", TAMPERED)
def test_validation_names_file_row_and_problem(name, file, edit, message, data_root, tmp_path):
    out = tmp_path / "sub"
    _write(out, name)
    validate_submission(out, data_root, SCHEMA, name)  # valid as written
    target = out / file
    target.write_text(edit(target.read_text()))
    with pytest.raises(SubmissionError, match=message) as caught:
        validate_submission(out, data_root, SCHEMA, name)
    assert str(caught.value).startswith(f"submission in {out} is invalid: {target}")
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(data_root, tmp_path):
    _write(tmp_path / "sub", "two_csv")
    (tmp_path / "sub" / "attribute.csv").unlink()
    with pytest.raises(SubmissionError, match=r"attribute.csv: file not found"):
        validate_submission(tmp_path / "sub", data_root, SCHEMA, "two_csv")


@pytest.mark.parametrize("name", list(SUBMISSION_FORMATS))
def test_an_invalid_submission_never_replaces_a_good_one(name, tmp_path):
    out = tmp_path / "sub"
    _write(out, name)
    before = _texts(out)
    with pytest.raises(SubmissionError, match=rf"invalid {name} submission, not written \({out} keeps its previous "
                                              r"files\): .*is not a category index 0..2"):
        _write(out, name, categories=np.array([2, 7, 1]))
    reversed_rows = r"row 1 \(line 2\): \w+ 'img/a.jpg' (starts an image )?where test.csv row 1 has 'img/c.jpg'"
    with pytest.raises(SubmissionError, match=reversed_rows):
        _write(out, name, test_paths=PATHS[::-1])
    with pytest.raises(SubmissionError, match=r"has 3 (rows|images), test.csv has 4 \(first missing: 'img/d.jpg'\)"):
        _write(out, name, test_paths=PATHS + ["img/d.jpg"])
    assert _texts(out) == before  # the good files untouched, no temporary left behind
    _write(out, name, attributes=np.zeros_like(ATTRIBUTES))  # a valid write replaces them
    assert _texts(out) != before


def test_ambiguous_stems_are_an_error(tmp_path):
    paths = ["men/a.jpg", "women/a.jpg", "men/b.jpg"]
    with pytest.raises(SubmissionError, match=r"submission.image_id 'stem': test.csv rows 1 and 2 \('men/a.jpg', "
                                              r"'women/a.jpg'\) give the same image id 'a'; use image_id: path"):
        write_submission(tmp_path, paths, CATEGORIES, ATTRIBUTES, schema=SCHEMA,
                         options=SubmissionOptions(format="single_csv", image_id="stem"))
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------ configuration

def test_config_choices_list_the_registries():
    assert CHOICES["submission.format"] == tuple(SUBMISSION_FORMATS)
    assert CHOICES["submission.image_id"] == tuple(IMAGE_IDS)
    assert CHOICES["submission.label_ids"] == tuple(LABEL_ID_STYLES)
    assert load_config()["submission"]["format"] == "two_csv"


def test_unknown_format_is_one_config_error_listing_the_known_ones():
    known = "two_csv, single_csv, image_label_ids, long"
    with pytest.raises(ConfigError, match=rf"'submission.format' must be one of {known} \(default: 'two_csv'\), "
                                          r"got 'kaggle'"):
        load_config(overrides=["submission.format=kaggle"])
    with pytest.raises(ConfigError, match=rf"'submission.format' must be one of {known}, got 'kaggle'"):
        submission_format("kaggle")
    with pytest.raises(ConfigError, match=rf"'submission.format' must be one of {known}, got 'kaggle'"):
        submission_files("kaggle")
    with pytest.raises(ConfigError, match=r"'submission.image_id' must be one of path, stem"):
        load_config(overrides=["submission.image_id=name"])


def test_renaming_a_column_the_format_does_not_write_is_a_config_error(tmp_path):
    options = SubmissionOptions(format="two_csv", columns={"image_id": "ImageId"})
    with pytest.raises(ConfigError, match=r"'submission.columns' renames 'image_id', which format two_csv does not "
                                          r"write \(its columns: attribute_label, category_label, file_path\)"):
        _write(tmp_path / "sub", options)
    with pytest.raises(ConfigError, match=r"gives submission.csv the header image_id,image_id"):
        _write(tmp_path / "sub", SubmissionOptions(format="image_label_ids", columns={"label_id": "image_id"}))
    with pytest.raises(ConfigError, match=r"'submission.columns' must map column names to non-empty"):
        SubmissionOptions(columns={"image_id": ""})
    assert not (tmp_path / "sub").exists()


# ------------------------------------------------------------------------------ make_submission --format

@pytest.fixture
def predicted_run(tiny_dataset, tmp_path) -> Path:
    """An initialised run with test probabilities and thresholds written directly (no training)."""
    run = tmp_path / "runs" / "tiny"
    assert cli.main(["init", "--run", str(run), "--data", str(tiny_dataset),
                     "--set", "submission.format=image_label_ids"]) == 0
    schema = Schema.load(run / "schema.json")
    paths = read_test(tiny_dataset)
    rng = np.random.default_rng(1)
    write_npz(run / "test_probs.npz", file_path=np.array(paths),
              category=rng.dirichlet(np.ones(schema.num_categories), len(paths)),
              attributes=rng.random((len(paths), schema.num_attributes)))
    write_json(run / "thresholds.json", {"thresholds": [0.5] * schema.num_attributes, "at_least_one": False})
    return run


def test_make_submission_format_flag_end_to_end(predicted_run, tiny_dataset, tmp_path, capsys):
    schema = Schema.load(predicted_run / "schema.json")
    subs = tmp_path / "subs"
    assert make_submission.main(["--run", str(predicted_run), "--out", str(subs)]) == 0  # the run's config
    validate_submission(subs / "tiny", tiny_dataset, schema, "image_label_ids")
    assert "(image_label_ids, 24 images, validated)" in capsys.readouterr().out

    assert make_submission.main(["--run", str(predicted_run), "--out", str(subs), "--format", "long"]) == 0
    validate_submission(subs / "tiny", tiny_dataset, schema, "long")
    long = pd.read_csv(subs / "tiny" / "submission.csv", dtype=str)
    assert list(long.columns) == ["image_id", "label_type", "label_id"]
    assert list(long.image_id.drop_duplicates()) == read_test(tiny_dataset)

    assert make_submission.main(["--run", str(predicted_run), "--out", str(subs), "--format", "two_csv"]) == 0
    validate_submission(subs / "tiny", tiny_dataset, schema)
    capsys.readouterr()

    before = (subs / "tiny" / "submission.csv").read_bytes()
    assert make_submission.main(["--run", str(predicted_run), "--out", str(subs), "--format", "kaggle"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: 'submission.format' must be one of two_csv, single_csv, image_label_ids, long, "
                   "got 'kaggle'\n")
    assert (subs / "tiny" / "submission.csv").read_bytes() == before
