"""Bad input: every problem is reported with file, row and reason before training starts, or is
warned about and handled by a defined fallback. Errors reach the user as `error: ...`, exit 2."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashioncomp import cli, make_submission
from fashioncomp.data.dataset_reader import DatasetError, read_test, read_train
from fashioncomp.data.schema import Schema
from fashioncomp.errors import DataWarning

REPO = Path(__file__).resolve().parents[1]
TINY_RUN = ["--set", "model.backbone=test_resnet", "--set", "train.epochs=1", "--set", "split.n_folds=2",
            "--set", "data.image_size=32"]


def _train_rows(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)


def _write_train(root: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(root / "train.csv", index=False)


def _edit(root: Path, row: int, **values: str) -> pd.DataFrame:
    """Set columns of 1-based data row `row` of train.csv."""
    frame = _train_rows(root)
    for column, value in values.items():
        frame.loc[row - 1, column] = value
    _write_train(root, frame)
    return frame


def _problems(root: Path) -> str:
    with pytest.raises(DatasetError) as info:
        read_train(root)
    return str(info.value)


def _where(root: Path, row: int) -> str:
    return f"{root / 'train.csv'} row {row} (line {row + 1})"


def _truncate(path: Path, keep: float = 0.8) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --- train.csv rows -------------------------------------------------------------------------

def test_valid_dataset_reads(dataset_copy):
    data, schema = read_train(dataset_copy)
    assert len(data) == 96 and schema == Schema.load(dataset_copy / "schema.json")
    assert data.attribute_known.all() and (data.categories >= 0).all()


def test_missing_image_file(dataset_copy):
    frame = _train_rows(dataset_copy)
    (dataset_copy / frame.file_path[4]).unlink()
    message = _problems(dataset_copy)
    assert f"{_where(dataset_copy, 5)}: image file '{frame.file_path[4]}' does not exist under {dataset_copy}" in message
    assert message.startswith("1 problem(s) in the dataset:")


def test_empty_attribute_label_means_no_attributes(dataset_copy):
    _edit(dataset_copy, 3, attribute_label="")
    data, _ = read_train(dataset_copy)
    assert data.attributes[2].sum() == 0 and data.attribute_known[2].all()


@pytest.mark.parametrize("column, value, problem", [
    ("category_label", "9", "category_label 9 out of range 0..8 (or -1 = unknown)"),
    ("category_label", "-2", "category_label -2 out of range 0..8 (or -1 = unknown)"),
    ("attribute_label", "3 18", "attribute index 18 out of range 0..17"),
    ("attribute_label", "-3", "attribute index -3 out of range 0..17"),
])
def test_label_out_of_range(dataset_copy, column, value, problem):
    _edit(dataset_copy, 7, **{column: value})
    assert f"{_where(dataset_copy, 7)}: {problem}" in _problems(dataset_copy)


@pytest.mark.parametrize("column, value, problem", [
    ("category_label", "shirt", "category_label 'shirt' is not an integer"),
    ("category_label", "1.5", "category_label '1.5' is not an integer"),
    ("category_label", "", "category_label '' is not an integer"),
    ("attribute_label", "3,4", "attribute_label token '3,4' is not an integer"),
    ("attribute_label", "red", "attribute_label token 'red' is not an integer"),
])
def test_non_integer_label(dataset_copy, column, value, problem):
    _edit(dataset_copy, 2, **{column: value})
    assert f"{_where(dataset_copy, 2)}: {problem}" in _problems(dataset_copy)


def test_two_attributes_of_a_multiclass_group(dataset_copy):
    _edit(dataset_copy, 4, attribute_label="0 1")
    assert (f"{_where(dataset_copy, 4)}: attributes ['black', 'white'] are all in multiclass group 'colour', "
            "which allows at most one") in _problems(dataset_copy)


@pytest.mark.parametrize("variant", ["{}", "./{}", "images/../{}"])
def test_duplicate_file_paths(dataset_copy, variant):
    frame = _train_rows(dataset_copy)
    frame.loc[9, "file_path"] = variant.format(frame.file_path[2])
    _write_train(dataset_copy, frame)
    assert f"{_where(dataset_copy, 10)}: duplicate file_path '{frame.file_path[9]}' (same file as row 3)" \
        in _problems(dataset_copy)


@pytest.mark.parametrize("path, problem", [
    ("../x.jpg", "file_path '../x.jpg' escapes the dataset root"),
    ("images/../../x.jpg", "file_path 'images/../../x.jpg' escapes the dataset root"),
    ("/etc/x.jpg", "file_path '/etc/x.jpg' is absolute; paths must be relative to the dataset root"),
    ("C:\\x.jpg", "file_path 'C:\\x.jpg' is absolute"),
    ("..\\x.jpg", "file_path '..\\x.jpg' escapes the dataset root"),
    ("", "empty file_path"),
])
def test_file_path_escaping_the_root(dataset_copy, path, problem):
    outside = dataset_copy.parent / "x.jpg"  # exists: the path check itself must refuse it
    outside.write_bytes((dataset_copy / _train_rows(dataset_copy).file_path[0]).read_bytes())
    _edit(dataset_copy, 6, file_path=path)
    assert f"{_where(dataset_copy, 6)}: {problem}" in _problems(dataset_copy)


def test_every_problem_is_listed_at_once_up_to_a_limit(dataset_copy):
    frame = _train_rows(dataset_copy)
    frame["category_label"] = "x"
    _write_train(dataset_copy, frame)
    message = _problems(dataset_copy)
    assert message.startswith("96 problem(s) in the dataset:")
    assert message.count("is not an integer") == 25 and message.endswith("... and 71 more problems")


# --- the CSV itself -------------------------------------------------------------------------

@pytest.mark.parametrize("text, problem", [
    ("", "the file is empty (expected a header: file_path,category_label,attribute_label)"),
    ("file_path,category_label,attribute_label\n", "has a header but no rows"),
    ("path,label,attributes\na.jpg,1,2\n", "wrong header 'path,label,attributes'; expected exactly 'file_path,category_label,attribute_label'"),
    ("file_path,category_label\na.jpg,1\n", "wrong header 'file_path,category_label'"),
    ("a.jpg,1,2\nb.jpg,0,\n", "wrong header 'a.jpg,1,2'"),
    ("file_path,category_label,attribute_label\na.jpg,1,2,3\n",
     "row 1 (line 2): has 4 fields, expected 3 (file_path,category_label,attribute_label): 'a.jpg,1,2,3'"),
    ("file_path,category_label,attribute_label\nb.jpg,1,2\n\"a.jpg,1,2\n", "cannot be parsed as CSV at line 3: unexpected end of data"),
    ("file_path,category_label,attribute_label\n\"a.jpg\" x,1,2\n", "cannot be parsed as CSV at line 2"),
    ("file_path,category_label,attribute_label\na.jpg,1,\0\n", "row 1 (line 2): attribute_label token '\x00' is not an integer"),
])
def test_bad_csv_files(dataset_copy, text, problem):
    (dataset_copy / "train.csv").write_text(text)
    separator = " " if problem.startswith("row") else ": "
    assert f"{dataset_copy / 'train.csv'}{separator}{problem}" in _problems(dataset_copy)


def test_missing_trailing_field_is_an_empty_value(dataset_copy):
    frame = _train_rows(dataset_copy)
    lines = (dataset_copy / "train.csv").read_text().splitlines()
    lines[1] = f"{frame.file_path[0]},{frame.category_label[0]}"
    (dataset_copy / "train.csv").write_text("\n".join(lines) + "\n")
    data, _ = read_train(dataset_copy)
    assert data.attributes[0].sum() == 0 and data.categories[0] == int(frame.category_label[0])


def test_quoted_values_and_blank_lines(dataset_copy):
    text = (dataset_copy / "train.csv").read_text().replace("\n", "\n\n", 3)
    first = _train_rows(dataset_copy).loc[0]
    text = text.replace(f"{first.file_path},{first.category_label},{first.attribute_label}",
                        f'"{first.file_path}","{first.category_label}","{first.attribute_label}"')
    (dataset_copy / "train.csv").write_text(text)
    data, _ = read_train(dataset_copy)
    assert len(data) == 96 and data.file_paths[0] == first.file_path


def test_not_utf8_csv(dataset_copy):
    (dataset_copy / "train.csv").write_bytes(b"file_path,category_label,attribute_label\n\xff\xfe.jpg,1,2\n")
    assert "train.csv: cannot be read as text: not valid UTF-8 (byte 0xff at offset 41)" in _problems(dataset_copy)


def test_missing_train_csv(dataset_copy):
    (dataset_copy / "train.csv").unlink()
    assert f"{dataset_copy / 'train.csv'}: file not found" in _problems(dataset_copy)


def test_header_with_byte_order_mark_and_spaces_is_accepted(dataset_copy):
    text = (dataset_copy / "train.csv").read_text().replace(
        "file_path,category_label,attribute_label", "file_path, category_label, attribute_label", 1)
    (dataset_copy / "train.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert len(read_train(dataset_copy)[0]) == 96


# --- images at init -------------------------------------------------------------------------

def test_undecodable_train_image_is_an_error_before_training(dataset_copy):
    frame = _train_rows(dataset_copy)
    (dataset_copy / frame.file_path[10]).write_bytes(b"this is not a jpeg")
    (dataset_copy / frame.file_path[11]).write_bytes(b"")
    message = _problems(dataset_copy)
    assert f"{_where(dataset_copy, 11)}: {dataset_copy / frame.file_path[10]}: not a readable image" in message
    assert f"{_where(dataset_copy, 12)}: {dataset_copy / frame.file_path[11]}: not a readable image" in message


def test_truncated_train_image_is_a_warning_naming_row_and_file(dataset_copy):
    frame = _train_rows(dataset_copy)
    _truncate(dataset_copy / frame.file_path[7])
    with pytest.warns(DataWarning) as record:
        data, _ = read_train(dataset_copy)
    assert len(data) == 96 and len(record) == 1
    assert f"{_where(dataset_copy, 8)}: '{frame.file_path[7]}' looks truncated" in str(record[0].message)


def test_image_check_can_be_skipped(dataset_copy):
    (dataset_copy / _train_rows(dataset_copy).file_path[0]).write_bytes(b"junk")
    assert len(read_train(dataset_copy, check_images=False)[0]) == 96


# --- partial labels -------------------------------------------------------------------------

def test_partial_label_tokens(dataset_copy):
    schema = Schema.load(dataset_copy / "schema.json")
    colour = [i for g in schema.groups if g.name == "colour" for i in g.indices]
    pattern = [i for g in schema.groups if g.name == "pattern" for i in g.indices]
    frame = _train_rows(dataset_copy)
    frame.loc[0, ["category_label", "attribute_label"]] = ["-1", "3 12"]   # category unknown
    frame.loc[1, "attribute_label"] = "?"                                    # nothing labelled
    frame.loc[2, "attribute_label"] = "-1"                                   # same as ?
    frame.loc[3, "attribute_label"] = "?colour 12"                           # colour group unknown
    frame.loc[4, "attribute_label"] = "?colour ?pattern"
    frame.loc[5, "attribute_label"] = "? 12"                                 # positive wins over ?
    _write_train(dataset_copy, frame)
    data, _ = read_train(dataset_copy)
    assert data.categories[0] == -1 and data.attribute_known[0].all()
    assert not data.attribute_known[1].any() and data.attributes[1].sum() == 0
    assert not data.attribute_known[2].any()
    assert not data.attribute_known[3, colour].any() and data.attribute_known[3, pattern].all()
    assert data.attributes[3].nonzero()[0].tolist() == [12] and data.attribute_known[3, 12]
    assert not data.attribute_known[4, colour + pattern].any()
    assert data.attribute_known[4].sum() == schema.num_attributes - len(colour) - len(pattern)
    assert data.attribute_known[5].nonzero()[0].tolist() == [12]
    assert data.attribute_known[6:].all()


def test_unknown_group_token_is_an_error(dataset_copy):
    _edit(dataset_copy, 3, attribute_label="?colours 2")
    assert (f"{_where(dataset_copy, 3)}: attribute_label token '?colours' names no attribute group "
            "(groups: colour, pattern, parts, gender)") in _problems(dataset_copy)


def test_group_token_without_groups_is_an_error(dataset_copy):
    (dataset_copy / "schema.json").unlink()
    _edit(dataset_copy, 2, attribute_label="?colour")
    assert "names no attribute group (groups: none)" in _problems(dataset_copy)


# --- test.csv -------------------------------------------------------------------------------

def test_test_csv_problems(dataset_copy):
    paths = read_test(dataset_copy)
    (dataset_copy / paths[0]).unlink()
    assert read_test(dataset_copy) == paths  # a missing test image is handled at prediction
    with pytest.raises(DatasetError, match="does not exist"):
        read_test(dataset_copy, check_exists=True)
    pd.DataFrame({"file_path": [paths[1], paths[1], "../t.jpg"]}).to_csv(dataset_copy / "test.csv", index=False)
    with pytest.raises(DatasetError) as info:
        read_test(dataset_copy)
    assert "test.csv row 2 (line 3): duplicate file_path" in str(info.value)
    assert "test.csv row 3 (line 4): file_path '../t.jpg' escapes the dataset root" in str(info.value)


# --- through the command line ---------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fashioncomp", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_cli_init_reports_every_bad_row_before_writing_anything(dataset_copy, tmp_path):
    frame = _train_rows(dataset_copy)
    (dataset_copy / frame.file_path[0]).unlink()
    (dataset_copy / frame.file_path[1]).write_bytes(b"corrupt")
    frame.loc[2, "category_label"] = "12"
    frame.loc[3, "attribute_label"] = "x"
    frame.loc[4, "file_path"] = "../x.jpg"
    frame.loc[5, "file_path"] = "/etc/x.jpg"
    frame.loc[6, "file_path"] = frame.file_path[7]
    _write_train(dataset_copy, frame)
    run = tmp_path / "runs" / "r"
    done = _cli("init", "--run", str(run), "--data", str(dataset_copy))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "error: 7 problem(s) in the dataset:"
    expected = [f"{_where(dataset_copy, 1)}: image file '{frame.file_path[0]}' does not exist",
                f"{_where(dataset_copy, 2)}: {dataset_copy / frame.file_path[1]}: not a readable image",
                f"{_where(dataset_copy, 3)}: category_label 12 out of range",
                f"{_where(dataset_copy, 4)}: attribute_label token 'x' is not an integer",
                f"{_where(dataset_copy, 5)}: file_path '../x.jpg' escapes the dataset root",
                f"{_where(dataset_copy, 6)}: file_path '/etc/x.jpg' is absolute",
                f"{_where(dataset_copy, 8)}: duplicate file_path"]
    for want in expected:
        assert any(line.strip().startswith(want) for line in lines[1:]), (want, done.stderr)
    assert not run.exists()


def test_cli_init_unknown_config_keys(tiny_dataset, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model:\n  backbone: resnet18\n  droprate: 0.3\n")
    done = _cli("init", "--run", str(tmp_path / "r"), "--data", str(tiny_dataset), "--config", str(recipe))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {recipe}: unknown config key 'model.droprate'. Did you mean 'model.drop_rate'?")
    assert done.stderr.count("\n") == 1
    done = _cli("init", "--run", str(tmp_path / "r"), "--data", str(tiny_dataset), "--set", "split.folds=3")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --set: unknown config key 'split.folds'. Did you mean 'split.n_folds'?")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text", ["", "path,label\n"])
def test_cli_init_bad_csv_is_one_error(dataset_copy, tmp_path, capsys, text):
    (dataset_copy / "train.csv").write_text(text)
    assert cli.main(["init", "--run", str(tmp_path / "r"), "--data", str(dataset_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {dataset_copy / 'train.csv'}: ") and err.count("\n") == 1


def test_cli_init_missing_dataset(tmp_path, capsys):
    assert cli.main(["init", "--run", str(tmp_path / "r"), "--data", str(tmp_path / "nowhere")]) == 2
    assert "train.csv: file not found" in capsys.readouterr().err


def test_cli_init_warns_about_a_truncated_image_and_goes_on(dataset_copy, tmp_path, capsys):
    frame = _train_rows(dataset_copy)
    _truncate(dataset_copy / frame.file_path[20])
    assert cli.main(["init", "--run", str(tmp_path / "r"), "--data", str(dataset_copy)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: 1 image(s) will be decoded only as far as they go:")
    assert f"{_where(dataset_copy, 21)}: '{frame.file_path[20]}' looks truncated" in err
    assert (tmp_path / "r" / "config.yaml").is_file()


def test_unreadable_test_images_are_predicted_from_the_prior(dataset_copy, tmp_path, capsys):
    """Whole pipeline through the CLI on a tiny run; two test images break before `predict`."""
    run, subs = tmp_path / "runs" / "tiny", tmp_path / "subs"
    assert cli.main(["init", "--run", str(run), "--data", str(dataset_copy), *TINY_RUN]) == 0
    for stage in (["split"], ["train", "--no-progress"], ["oof"], ["thresholds"]):
        assert cli.main([stage[0], "--run", str(run), *stage[1:]]) == 0, capsys.readouterr().err
    test_paths = read_test(dataset_copy)
    (dataset_copy / test_paths[1]).unlink()
    (dataset_copy / test_paths[4]).write_bytes(b"\xff\xd8\xff not really a jpeg")
    capsys.readouterr()

    assert cli.main(["predict", "--run", str(run)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"warning: row 2 of the image list: {dataset_copy / test_paths[1]}: image file not found" in captured.err
    assert f"warning: row 5 of the image list: {dataset_copy / test_paths[4]}: cannot decode image" in captured.err
    assert "2 unreadable test image(s) predicted from the model prior" in captured.out

    probs = np.load(run / "test_probs.npz")
    oof = np.load(run / "oof.npz")
    broken = [1, 4]
    assert probs["readable"].tolist() == [i not in broken for i in range(len(test_paths))]
    for key in ("category", "attributes"):
        prior = np.nanmean(oof[key], axis=0)
        np.testing.assert_allclose(probs[key][broken], np.stack([prior, prior]), rtol=1e-5)
        assert not np.allclose(probs[key][0], prior)  # readable rows are real predictions

    assert make_submission.main(["--run", str(run), "--out", str(subs)]) == 0
    category = pd.read_csv(subs / "tiny" / "category.csv", dtype=str, keep_default_na=False)
    attribute = pd.read_csv(subs / "tiny" / "attribute.csv", dtype=str, keep_default_na=False)
    assert list(category.file_path) == test_paths == list(attribute.file_path)
    assert category.category_label.str.fullmatch(r"\d+").all()


def test_make_submission_before_predict_is_a_clear_error(tmp_path, tiny_dataset, capsys):
    run = tmp_path / "runs" / "r"
    assert cli.main(["init", "--run", str(run), "--data", str(tiny_dataset)]) == 0
    assert make_submission.main(["--run", str(run), "--out", str(tmp_path / "subs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / 'test_probs.npz'}: file not found (run `python -m fashioncomp predict")


def test_stage_on_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert cli.main(["split", "--run", str(tmp_path / "nope")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_no_warning_leaks_from_a_clean_dataset(dataset_copy):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        read_train(dataset_copy)
