"""Reference models a recipe must beat; each writes the two submission CSVs for a dataset's test.csv."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from fashioncomp.data.schema import Schema


def baseline_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line every baseline shares: --data DIR --out DIR."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="dataset root with train.csv and test.csv")
    parser.add_argument("--out", required=True, type=Path, help="directory for category.csv and attribute.csv")
    return parser


def write_baseline_submission(out_dir: Path, data_root: Path, schema: "Schema", test_paths: list[str],
                              categories: "np.ndarray", attributes: "np.ndarray", summary: str) -> Path:
    """Write the two CSVs (validated against test.csv before they replace anything), then print
    `summary` with where they went. Always two_csv: frontier.score_submission reads these."""
    from fashioncomp.data.dataset_reader import read_test
    from fashioncomp.submission import write_submission

    write_submission(out_dir, test_paths, categories, attributes, schema=schema, test_paths=read_test(data_root))
    print(f"{summary} -> {out_dir} ({len(test_paths)} rows)")
    return out_dir
