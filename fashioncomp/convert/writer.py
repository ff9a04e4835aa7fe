"""Write a converted dataset into DST in this project's layout without copying an image:

    DST/train.csv, DST/test.csv, DST/schema.json    written atomically (fashioncomp.io)
    DST/<top>  ->  <image base>/<top>               one symlink per top-level folder of the image paths
                                                     (per file for an image directly in the base)
    DST/conversion.json                             which converter, source and options made DST

The rows keep their source paths, so `DST/<file_path>` resolves through the links to the source
image (relative paths cannot do this: the dataset reader refuses paths that leave DST). SRC is
only read, so a read-only mount works. DST is refused when it holds something else (another
conversion, or files this converter did not write) unless `force`; even then only the files above
are replaced, and a real folder where a link has to go is never removed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from fashioncomp.convert.converted import ConvertedDataset, ConvertError, ImageRow
from fashioncomp.data.dataset_reader import TEST_COLUMNS, TRAIN_COLUMNS
from fashioncomp.io import OutputError, explain_os_error, write_csv, write_json

MANIFEST = "conversion.json"
OUTPUT_FILES = ("train.csv", "test.csv", "schema.json", MANIFEST)
MAX_LISTED = 5


def _check_path(row: ImageRow) -> None:
    path = PurePosixPath(row.path)
    if not row.path or path.is_absolute() or ".." in path.parts or "\\" in row.path:
        raise ConvertError(f"{row.origin}: image path '{row.path}' is not a path inside the dataset")


def _check_images_exist(rows: list[ImageRow], base: Path) -> None:
    """Every listed image is a file under the base; else the first few and the count, in one line."""
    for row in rows:
        _check_path(row)
    missing = [row for row in rows if not (base / row.path).is_file()]
    if missing:
        shown = ", ".join(f"'{r.path}' ({r.origin})" for r in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise ConvertError(f"{len(missing)} of {len(rows)} listed images are missing under {base}: {shown}{more}")


def _check_duplicates(rows: list[ImageRow], what: str) -> None:
    first: dict[str, str] = {}
    for row in rows:
        if row.path in first:
            raise ConvertError(f"{row.origin}: image '{row.path}' is listed twice for {what} "
                               f"(first at {first[row.path]})")
        first[row.path] = row.origin


def plan_links(rows: list[ImageRow], base: Path) -> dict[str, str]:
    """Link name in DST -> its target: one per top-level entry of the image paths."""
    links = {}
    for row in rows:
        top = PurePosixPath(row.path).parts[0]
        if top in OUTPUT_FILES:
            raise ConvertError(f"{row.origin}: image path '{row.path}' starts with '{top}', a name DST needs "
                               "for its own file")
        links[top] = str(base / top)
    return links


def _read_manifest(dst: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((dst / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _what_dst_holds(manifest: dict[str, Any] | None, identity: dict[str, Any], entries: list[str]) -> str:
    if manifest is None:
        more = ", ..." if len(entries) > MAX_LISTED else ""
        return f"files this converter did not write ({', '.join(entries[:MAX_LISTED])}{more})"
    what = f"a dataset converted by '{manifest.get('converter')}' from {manifest.get('source')}"
    if manifest.get("converter") == identity["converter"] and manifest.get("source") == identity["source"]:
        old_options = manifest.get("options") if isinstance(manifest.get("options"), dict) else {}
        changed = [k for k, v in identity["options"].items() if old_options.get(k) != v]
        what += f" with other options ({', '.join(changed)})"
    return what


def _check_destination(dst: Path, identity: dict[str, Any], links: dict[str, str],
                       force: bool) -> dict[str, Any] | None:
    """The manifest DST holds (None if none); refuses a DST that holds another dataset unless `force`."""
    if dst.exists() and not dst.is_dir():
        raise ConvertError(f"{dst}: exists and is not a folder")
    if dst.resolve() == Path(identity["source"]).resolve():
        raise ConvertError(f"{dst}: DST must be another folder than SRC (SRC is only read)")
    entries = sorted(p.name for p in dst.iterdir()) if dst.is_dir() else []
    manifest = _read_manifest(dst) if entries else None
    same = manifest is not None and {k: manifest.get(k) for k in identity} == identity
    if entries and not same and not force:
        raise ConvertError(f"{dst} already holds {_what_dst_holds(manifest, identity, entries)}; pass --force to "
                           "replace its train.csv, test.csv, schema.json and image links, or choose another DST")
    for name, target in links.items():
        if (dst / name).exists() and not (dst / name).is_symlink():
            raise ConvertError(f"{dst / name} is in the way of the image link {name} -> {target} and is not a "
                               "link; move it away or choose another DST")
    return manifest


def _link(dst: Path, name: str, target: str) -> None:
    """DST/name -> target, replacing an older link in one step."""
    path, tmp = dst / name, dst / f".{name}.link.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(explain_os_error(exc, path, action="create the link")) from None


def write_converted(dataset: ConvertedDataset, dst: Path, identity: dict[str, Any], force: bool = False) -> Path:
    """Check the images, then write DST (see the module doc); returns DST.

    `identity`: {"converter", "source", "options"}: what made DST; converting the same way again
    rewrites it without `force`."""
    base = dataset.image_base
    for rows, what in ((dataset.train, "train.csv"), (dataset.test, "test.csv")):
        _check_duplicates(rows, what)
    _check_images_exist(dataset.train + dataset.test, base)
    links = plan_links(dataset.train + dataset.test, base)
    old = _check_destination(dst, identity, links, force)

    counts = {"train_rows": len(dataset.train), "test_rows": len(dataset.test)}
    # first: an interrupted conversion is then recognised as this one and redone without --force
    write_json(dst / MANIFEST, {**identity, "image_base": str(base), "links": links, **counts, "notes": dataset.notes})
    for name in (old or {}).get("links") or {}:
        if name not in links and (dst / name).is_symlink():  # a link of the replaced conversion
            (dst / name).unlink()
    for name, target in links.items():
        _link(dst, name, target)
    write_csv(dst / "train.csv", pd.DataFrame(
        [(r.path, r.category, r.attributes) for r in dataset.train], columns=TRAIN_COLUMNS))
    if dataset.test:
        write_csv(dst / "test.csv", pd.DataFrame([r.path for r in dataset.test], columns=TEST_COLUMNS))
    elif (dst / "test.csv").is_file():
        (dst / "test.csv").unlink()  # the replaced conversion's: it would be predicted as this one's test set
    write_json(dst / "schema.json", {**dataset.schema.to_dict(), **dataset.schema_extras})
    return dst
