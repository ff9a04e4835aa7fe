"""Input converters: another dataset's files -> this project's layout (train.csv, test.csv,
schema.json; the images linked, never copied; see writer.py).

    python -m fashioncomp.convert deepfashion SRC DST [--val-as train|test|drop]
    python -m fashioncomp.convert csv SRC DST --image-col C --category-col C --attributes-col C [...]
    python -m fashioncomp.convert json SRC DST --image-col C --category-col C --attributes-col C [...]

or from Python: `convert("deepfashion", src, dst, val_as="test")`. Converters are registered in
CONVERTERS by name (registry.py); each one only reads its source (deepfashion.py, table.py), and
writer.py writes the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

# the converters register themselves on import
from fashioncomp.convert import deepfashion, table  # noqa: F401
from fashioncomp.convert.converted import ConvertError
from fashioncomp.convert.registry import CONVERTERS, get_converter
from fashioncomp.convert.source import source_dir
from fashioncomp.convert.writer import write_converted

__all__ = ["CONVERTERS", "ConvertError", "convert"]


def convert(name: str, src: Path | str, dst: Path | str, force: bool = False, **options: Any) -> Path:
    """Convert the dataset in `src` with converter `name` into `dst` (returned); `options` are the
    converter's (e.g. val_as="test"); `force` replaces another dataset in `dst`."""
    converter = get_converter(name)
    resolved = converter.resolve_options(options)
    source = source_dir(src)
    dataset = converter.read(source, **resolved)
    identity = {"converter": name, "source": str(source), "options": resolved}
    dst = write_converted(dataset, Path(dst), identity, force)
    for note in dataset.notes:
        print(f"convert {name}: {note}")
    links = sorted({row.path.split("/")[0] for row in dataset.train + dataset.test})
    shown = ", ".join(links[:3]) + (f", ... ({len(links)} links)" if len(links) > 3 else "")
    print(f"convert {name}: wrote {dst}/train.csv, {'test.csv, ' if dataset.test else ''}schema.json; "
          f"images linked from {dataset.image_base} ({shown})")
    return dst
