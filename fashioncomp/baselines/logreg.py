"""python -m fashioncomp.baselines.logreg --data DIR --out DIR

The reference every recipe must beat: logistic regression on 24 px thumbnails plus HSV colour
histograms (fashioncomp.linear), fitted on `<DIR>/train.csv` in well under a minute on 2 cores. One multinomial model
for the category, one binary model per attribute (positive at probability 0.5). Writes the two
submission CSVs for `<DIR>/test.csv` into `--out`.
"""
from __future__ import annotations

import time
from pathlib import Path

from fashioncomp.baselines import baseline_parser, write_baseline_submission
from fashioncomp.cli import run_cli
from fashioncomp.data.dataset_reader import read_test, read_train
from fashioncomp.linear.features import image_features
from fashioncomp.linear.model import LinearModel


def run(data_root: Path, out_dir: Path) -> Path:
    started = time.perf_counter()
    data, schema = read_train(data_root, check_images=False)
    model = LinearModel(schema.num_categories).fit(image_features(data_root, data.file_paths), data)
    test_paths = read_test(data_root)
    categories, attributes = model.predict(image_features(data_root, test_paths))
    return write_baseline_submission(out_dir, data_root, schema, test_paths, categories, attributes,
                                     f"logreg reference: {len(data)} training images in "
                                     f"{time.perf_counter() - started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = baseline_parser("fashioncomp.baselines.logreg", __doc__)
    args = parser.parse_args(argv)
    return run_cli(lambda: run(args.data, args.out))


if __name__ == "__main__":
    raise SystemExit(main())
