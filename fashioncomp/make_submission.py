"""python -m fashioncomp.make_submission --run runs/<name> [--out submissions] [--format NAME]

Decode the run's test probabilities with the tuned thresholds (argmax for multiclass attribute
groups) and write submissions/<name>/ in the run's `submission.format` (default two_csv:
category.csv and attribute.csv; --format overrides it), validated against test.csv before any
file is replaced. Attributes merged into "other" for training (data.merge_rare_below) are never written.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fashioncomp.cli import timed
from fashioncomp.data.dataset_reader import read_test
from fashioncomp.io import read_json, read_npz
from fashioncomp.pipeline import Run
from fashioncomp.postprocessing.decode import decode_attributes, decode_category
from fashioncomp.submission import (SUBMISSION_FORMATS, SubmissionOptions, check_options, submission_files,
                                    write_submission)


def make_submission(run: Run, out_root: Path | str = "submissions", format_name: str | None = None) -> Path:
    """Write the run's submission; `format_name` overrides the config's submission.format."""
    options = SubmissionOptions.from_config(run.config)
    if format_name is not None:
        options = options.with_format(format_name)
    check_options(options)  # an unknown format or column fails here, before any work
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
    written = write_submission(out_dir, list(probs["file_path"]), decode_category(probs["category"]), attributes,
                               schema=run.schema, test_paths=read_test(run.data_root), options=options)
    print(f"submission: {' and '.join(map(str, written))} ({options.format}, {len(probs['file_path'])} images, "
          "validated)")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    formats = "\n".join(f"  {name:<16} {', '.join(submission_files(name))}: {fmt.summary}"
                        for name, fmt in SUBMISSION_FORMATS.items())
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.make_submission", description=__doc__,
                                     epilog=f"formats (--format, submission.format):\n{formats}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory, e.g. runs/default")
    parser.add_argument("--out", default="submissions", help="submissions root (default: submissions)")
    parser.add_argument("--format", dest="format_name", metavar="NAME",
                        help="submission format instead of the run's submission.format (see below)")
    args = parser.parse_args(argv)
    return timed(args.run, "submission", lambda: make_submission(Run(args.run), args.out, args.format_name))


if __name__ == "__main__":
    raise SystemExit(main())
