"""python -m fashioncomp.make_submission --run runs/<name> [--out submissions]

Decode the run's test probabilities with the tuned thresholds (argmax for multiclass attribute
groups) and write submissions/<name>/category.csv and attribute.csv, validated against test.csv.
Attributes merged into "other" for training (data.merge_rare_below) are never written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fashioncomp.cli import timed
from fashioncomp.io import read_json, read_npz
from fashioncomp.pipeline import Run
from fashioncomp.postprocessing.decode import decode_attributes, decode_category
from fashioncomp.submission import validate_submission, write_submission


def make_submission(run: Run, out_root: Path | str = "submissions") -> Path:
    probs = read_npz(run.dir / "test_probs.npz", hint=f" (run `python -m fashioncomp predict --run {run.dir}` first)")
    thresholds = read_json(run.dir / "thresholds.json",
                           hint=f" (run `python -m fashioncomp thresholds --run {run.dir}` first)")
    attributes = decode_attributes(probs["attributes"], np.array(thresholds["thresholds"]), run.decode_groups,
                                   at_least_one=thresholds["at_least_one"])
    merged = list(run.schema.merged)
    if merged:
        # their probability is 0 already; this makes "never written" hold whatever the thresholds
        attributes[:, merged] = False
        print(f"submission: {len(merged)} rare attribute(s) merged into 'other' for training are never predicted: "
              + ", ".join(run.schema.attributes[j] for j in merged))
    out_dir = Path(out_root) / run.name
    write_submission(out_dir, list(probs["file_path"]), decode_category(probs["category"]), attributes)
    validate_submission(out_dir, run.data_root, run.schema)
    print(f"submission: {out_dir / 'category.csv'} and {out_dir / 'attribute.csv'} ({len(probs['file_path'])} rows, validated)")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.make_submission", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory, e.g. runs/default")
    parser.add_argument("--out", default="submissions", help="submissions root (default: submissions)")
    args = parser.parse_args(argv)
    return timed(args.run, "submission", lambda: make_submission(Run(args.run), args.out))


if __name__ == "__main__":
    raise SystemExit(main())
