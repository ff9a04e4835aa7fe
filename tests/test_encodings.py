"""CSVs, schema.json and recipes saved by any common editor are read: UTF-8 with or without a
byte-order mark, UTF-16 / UTF-32 with one; anything else is one clear error naming the file."""
from __future__ import annotations

import json

import pytest

from fashioncomp.config import ConfigError, load_config
from fashioncomp.data.dataset_reader import DatasetError, read_test, read_train
from fashioncomp.data.schema import Schema
from fashioncomp.pipeline import init_run
from fashioncomp.textfile import TextFileError, read_text_file

SAVED_AS = {"utf-8-bom": lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
            "utf-16-le": lambda text: text.encode("utf-16"),  # with its byte-order mark, as Windows saves it
            "utf-16-be": lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
            "utf-32": lambda text: text.encode("utf-32")}


@pytest.mark.parametrize("encoding", sorted(SAVED_AS))
def test_dataset_files_in_any_common_encoding_read_the_same(dataset_copy, tiny_dataset, encoding):
    for name in ("train.csv", "test.csv", "schema.json"):
        text = (dataset_copy / name).read_text(encoding="utf-8").replace("\n", "\r\n")  # Windows line ends too
        (dataset_copy / name).write_bytes(SAVED_AS[encoding](text))
    data, schema = read_train(dataset_copy, check_images=False)
    want, want_schema = read_train(tiny_dataset, check_images=False)
    assert data.file_paths == want.file_paths and (data.attributes == want.attributes).all()
    assert (data.categories == want.categories).all() and schema == want_schema
    assert read_test(dataset_copy) == read_test(tiny_dataset)
    assert Schema.load(dataset_copy / "schema.json") == Schema.load(tiny_dataset / "schema.json")


def test_init_reads_a_utf16_schema(dataset_copy, tmp_path):
    schema = (dataset_copy / "schema.json").read_text(encoding="utf-8")
    (dataset_copy / "schema.json").write_bytes(schema.encode("utf-16"))
    run = init_run(tmp_path / "run", dataset_copy, None, ["model.backbone=test_resnet"])
    assert run.schema.to_dict()["categories"] == json.loads(schema)["categories"]


def test_recipe_in_utf16(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes("# recette d'été\ntrain:\n  epochs: 3\n".encode("utf-16"))
    assert load_config(recipe)["train"]["epochs"] == 3


def test_latin1_csv_is_one_clear_error(dataset_copy):
    text = (dataset_copy / "train.csv").read_text(encoding="utf-8")
    (dataset_copy / "train.csv").write_bytes(text.replace("images/train/00002.jpg", "images/train/é.jpg").encode("latin-1"))
    offset = text.index("images/train/00002.jpg") + len("images/train/")
    with pytest.raises(DatasetError) as info:
        read_train(dataset_copy, check_images=False)
    assert str(info.value) == (f"{dataset_copy / 'train.csv'}: cannot be read as text: not valid UTF-8 (byte 0xe9 at "
                               f"offset {offset}); save it as UTF-8 (or UTF-16 with a byte-order mark)")


def test_utf16_without_byte_order_mark_is_named(dataset_copy):
    text = (dataset_copy / "test.csv").read_text(encoding="utf-8")
    (dataset_copy / "test.csv").write_bytes(text.encode("utf-16-le"))
    with pytest.raises(DatasetError, match=r"test\.csv: cannot be read as text: it is full of NUL bytes, as UTF-16 without a byte-order mark is"):
        read_test(dataset_copy)


def test_undecodable_schema_and_recipe_name_the_file(tmp_path):
    (tmp_path / "schema.json").write_bytes(b'{"categories": ["\xff\xfe"]}'[::-1] + b"\x81")
    with pytest.raises(TextFileError, match=r"schema\.json: cannot be read as text"):
        Schema.load(tmp_path / "schema.json")
    (tmp_path / "r.yaml").write_bytes(b"train:\n  epochs: \x93three\x94\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: cannot be read as text: not valid UTF-8 \(byte 0x93"):
        load_config(tmp_path / "r.yaml")
    with pytest.raises(TextFileError, match="file not found"):
        read_text_file(tmp_path / "none.txt")
