"""DeepFashion "Category and Attribute Prediction Benchmark" (Liu et al. 2016), as released:

    Anno/list_category_cloth.txt  category_name  category_type    50 names; type 1 upper, 2 lower, 3 full body
    Anno/list_category_img.txt    image_name  category_label      1-based ids into the list above
    Anno/list_attr_cloth.txt      attribute_name  attribute_type  1000 names (some with spaces); type
                                                                   1 texture, 2 fabric, 3 shape, 4 part, 5 style
    Anno/list_attr_img.txt        image_name  attribute_labels    one label per attribute: 1 positive,
                                                                   -1 negative, 0 unknown (later release)
    Eval/list_eval_partition.txt  image_name  evaluation_status   train / val / test
    Img/img/<folder>/img_NNNNNNNN.jpg (image names are "img/<folder>/<file>")

Each list: line 1 the row count, line 2 the column names, then whitespace-separated rows. The
files are looked for in SRC, SRC/Anno, SRC/Anno_coarse and SRC/Eval; the images in SRC or SRC/Img.

Mapping to this project's layout:
- train partition (and val, with `val_as=train`, the default) -> train.csv; test (and val with
  `val_as=test`) -> test.csv; `val_as=drop` leaves val out.
- categories: only those present in train.csv, renumbered 0..K-1 in the order of their original
  ids (DeepFashion merged four of its 50 into "Dress", so they have no images); schema.json lists
  their names and, under "category_source_ids", each one's original 1-based id.
- attributes: all of list_attr_cloth.txt, in its order (attribute i = line i + 3); the attribute
  type becomes a multilabel attribute group (texture, fabric, shape, part, style).
- a 0 (unknown) label cannot be marked for one attribute alone in train.csv: the image's whole
  group is marked unknown (`?<group>`; `?` when every group has one), so it is left out of the
  losses and metrics, never counted as absent. Positive labels in that group stay known.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fashioncomp.convert.converted import UNKNOWN_ATTRIBUTES, ConvertedDataset, ConvertError, ImageRow
from fashioncomp.convert.listfile import ListFile
from fashioncomp.convert.registry import Option, register_converter
from fashioncomp.convert.source import folder_in_source
from fashioncomp.convert.vocabulary import unique_names
from fashioncomp.data.schema import AttributeGroup, Schema

ANNOTATION_DIRS = ("", "Anno", "Anno_coarse", "Eval")
IMAGE_DIRS = ("", "Img")  # the folder holding the image names' first folder ("img")
HEADERS = {
    "list_category_cloth.txt": ("category_name", "category_type"),
    "list_attr_cloth.txt": ("attribute_name", "attribute_type"),
    "list_eval_partition.txt": ("image_name", "evaluation_status"),
    "list_category_img.txt": ("image_name", "category_label"),
    "list_attr_img.txt": ("image_name", "attribute_labels"),
}
ATTRIBUTE_TYPES = {"1": "texture", "2": "fabric", "3": "shape", "4": "part", "5": "style"}
PARTITIONS = ("train", "val", "test")
ATTRIBUTE_VALUES = frozenset({"-1", "0", "1"})

OPTIONS = (
    Option("val_as", "where the val partition goes: train.csv, test.csv or nowhere", "train",
           choices=("train", "test", "drop")),
    Option("images", "folder under SRC that holds the images' 'img' folder (default: SRC or SRC/Img, "
                     "whichever has it)"),
)


@dataclass(frozen=True)
class Listed:
    """A name from a list file with the value it was listed with, and where."""

    name: str
    value: str
    origin: str


def _find(src: Path, name: str) -> ListFile:
    for folder in ANNOTATION_DIRS:
        if (src / folder / name).is_file():
            return ListFile(src / folder / name, HEADERS[name])
    places = ", ".join(str(src / folder) for folder in ANNOTATION_DIRS)
    raise ConvertError(f"{name} not found in {places} (is SRC the benchmark's folder?)")


def _read_names(listing: ListFile) -> list[Listed]:
    """list_*_cloth.txt: a name (maybe with spaces) and its type, the last field."""
    out = []
    for line, text in listing.rows():
        *words, kind = text.split()
        if not words or not kind.isdigit():
            raise ConvertError(f"{listing.where(line)}: expected '<name> <type number>', got '{text.strip()[:80]}'")
        out.append(Listed(" ".join(words), kind, listing.where(line)))
    return out


def _image_name(listing: ListFile, line: int, name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ConvertError(f"{listing.where(line)}: image name '{name}' is not a path inside the dataset")
    return name


def _read_image_values(listing: ListFile, known: dict[str, Listed] | None) -> dict[str, Listed]:
    """list_*_img.txt / list_eval_partition.txt: image name -> its one value. `known`: the images
    of the partition; an image outside it is an error."""
    out: dict[str, Listed] = {}
    for line, text in listing.rows():
        fields = text.split()
        if len(fields) != 2:
            raise ConvertError(f"{listing.where(line)}: expected '<image name> <{listing.header[1]}>', "
                               f"got {len(fields)} fields")
        _add_image(out, listing, line, fields[0], fields[1], known)
    return out


def _add_image(out: dict[str, Listed], listing: ListFile, line: int, name: str, value: str,
               known: dict[str, Listed] | None) -> None:
    name = _image_name(listing, line, name)
    if name in out:
        raise ConvertError(f"{listing.where(line)}: image '{name}' is listed twice (first at {out[name].origin})")
    if known is not None and name not in known:
        raise ConvertError(f"{listing.where(line)}: unknown image '{name}': it is not in list_eval_partition.txt")
    out[name] = Listed(name, value, listing.where(line))


class AttributeEncoder:
    """One list_attr_img.txt row -> train.csv's attribute_label: the positive attributes' indices,
    and an unknown marker for every type group holding a 0 (unknown) label."""

    def __init__(self, types: list[str]) -> None:
        # attribute index -> its group's name
        self.group_of = [ATTRIBUTE_TYPES.get(kind, f"type_{kind}") for kind in types]
        self.groups = list(dict.fromkeys(self.group_of))

    def encode(self, values: list[str]) -> str:
        positives = [str(i) for i, v in enumerate(values) if v == "1"]
        if "0" not in values:
            return " ".join(positives)
        unknown = {self.group_of[i] for i, v in enumerate(values) if v == "0"}
        markers = [UNKNOWN_ATTRIBUTES] if len(unknown) == len(self.groups) else \
            [f"?{g}" for g in self.groups if g in unknown]
        return " ".join(positives + markers)

    def schema_groups(self) -> tuple[AttributeGroup, ...]:
        return tuple(AttributeGroup(g, "multilabel", tuple(i for i, o in enumerate(self.group_of) if o == g))
                     for g in self.groups)


def _read_attribute_labels(listing: ListFile, n_attributes: int, known: dict[str, Listed],
                           encoder: AttributeEncoder) -> dict[str, Listed]:
    out: dict[str, Listed] = {}
    for line, text in listing.rows():
        name, *values = text.split()
        if len(values) != n_attributes:
            raise ConvertError(f"{listing.where(line)}: {len(values)} attribute labels, expected {n_attributes} "
                               "(one per attribute of list_attr_cloth.txt)")
        if not ATTRIBUTE_VALUES.issuperset(values):
            column, bad = next((i, v) for i, v in enumerate(values) if v not in ATTRIBUTE_VALUES)
            raise ConvertError(f"{listing.where(line)}: attribute label '{bad}' (attribute {column + 1}) "
                               "is not -1, 0 or 1")
        _add_image(out, listing, line, name, encoder.encode(values), known)
    _check_listed(known, out, listing)
    return out


def _check_listed(partition: dict[str, Listed], labels: dict[str, Listed], listing: ListFile) -> None:
    missing = [item for name, item in partition.items() if name not in labels]
    if missing:
        raise ConvertError(f"{missing[0].origin}: image '{missing[0].name}' has no row in {listing.path} "
                           f"({len(missing)} image(s) of the partition have none)")


def _image_base(src: Path, images: str | None, first_name: str) -> Path:
    top = PurePosixPath(first_name).parts[0]
    if images is not None:
        base = folder_in_source(src, images, "images")
        if not (base / top).exists():
            raise ConvertError(f"{base / top} not found (--images {images}: the folder holding '{top}')")
        return base
    for folder in IMAGE_DIRS:
        if (src / folder / top).is_dir():
            return src / folder
    places = " or ".join(str(src / folder / top) for folder in IMAGE_DIRS)
    raise ConvertError(f"the images are not in {places} (unzip Img/img.zip there, or pass --images FOLDER)")


def _read_partition(src: Path) -> tuple[ListFile, dict[str, Listed]]:
    listing = _find(src, "list_eval_partition.txt")
    partition = _read_image_values(listing, None)
    for item in partition.values():
        if item.value not in PARTITIONS:
            raise ConvertError(f"{item.origin}: evaluation status '{item.value}' is not one of {', '.join(PARTITIONS)}")
    if not partition:
        raise ConvertError(f"{listing.path}: lists no images")
    return listing, partition


def _read_category_labels(src: Path, partition: dict[str, Listed], n_categories: int) -> dict[str, Listed]:
    listing = _find(src, "list_category_img.txt")
    category_of = _read_image_values(listing, partition)
    for item in category_of.values():
        if not (item.value.isdigit() and 1 <= int(item.value) <= n_categories):
            raise ConvertError(f"{item.origin}: category label '{item.value}' is not an id 1..{n_categories} "
                               "of list_category_cloth.txt")
    _check_listed(partition, category_of, listing)
    return category_of


def _notes(partition: dict[str, Listed], val_as: str, n_rows: tuple[int, int], present: list[int],
           n_categories: int, encoder: AttributeEncoder, unknown_in_train: int) -> list[str]:
    counts = {p: sum(item.value == p for item in partition.values()) for p in PARTITIONS}
    val = "dropped" if val_as == "drop" else f"to {val_as}.csv"
    notes = [f"partition: {counts['train']} train, {counts['val']} val ({val}), {counts['test']} test -> "
             f"{n_rows[0]} train rows, {n_rows[1]} test rows",
             f"categories: {len(present)} of the {n_categories} listed appear in train.csv, renumbered "
             f"0..{len(present) - 1} (their original ids: schema.json category_source_ids)",
             f"attributes: {len(encoder.group_of)} in {len(encoder.groups)} type groups ({', '.join(encoder.groups)})"]
    if unknown_in_train:
        notes.append(f"{unknown_in_train} train row(s) have unknown (0) attribute labels: their group is marked "
                     "unknown (?<group>), not absent")
    return notes


@register_converter("deepfashion", "DeepFashion Category and Attribute Prediction Benchmark (list_*.txt)", OPTIONS)
def read_deepfashion(src: Path, val_as: str, images: str | None) -> ConvertedDataset:
    categories = _read_names(_find(src, "list_category_cloth.txt"))
    attributes = _read_names(_find(src, "list_attr_cloth.txt"))
    partition_list, partition = _read_partition(src)
    category_of = _read_category_labels(src, partition, len(categories))
    encoder = AttributeEncoder([a.value for a in attributes])
    attributes_of = _read_attribute_labels(_find(src, "list_attr_img.txt"), len(attributes), partition, encoder)

    destination = {"train": "train", "val": val_as, "test": "test"}
    train_names = [n for n, item in partition.items() if destination[item.value] == "train"]
    test_names = [n for n, item in partition.items() if destination[item.value] == "test"]
    if not train_names:
        raise ConvertError(f"{partition_list.path}: no image goes to train.csv (val_as={val_as})")
    present = sorted({int(category_of[n].value) for n in train_names})
    dense = {source_id: i for i, source_id in enumerate(present)}
    train = [ImageRow(n, partition[n].origin, dense[int(category_of[n].value)], attributes_of[n].value)
             for n in train_names]
    test = [ImageRow(n, partition[n].origin) for n in test_names]
    schema = Schema(tuple(unique_names(categories[i - 1].name for i in present)),
                    tuple(unique_names(a.name for a in attributes)), encoder.schema_groups())
    unknown_in_train = sum("?" in row.attributes for row in train)
    notes = _notes(partition, val_as, (len(train), len(test)), present, len(categories), encoder, unknown_in_train)
    return ConvertedDataset(train, test, schema, _image_base(src, images, train_names[0]),
                            {"category_source_ids": present}, notes)
