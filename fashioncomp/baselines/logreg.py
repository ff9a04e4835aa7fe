"""python -m fashioncomp.baselines.logreg --data DIR --out DIR

The reference every recipe must beat: logistic regression on 24 px thumbnails plus HSV colour
histograms, fitted on `<DIR>/train.csv` in well under a minute on 2 cores. One multinomial model
for the category, one binary model per attribute (positive at probability 0.5). Writes the two
submission CSVs for `<DIR>/test.csv` into `--out`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from fashioncomp.baselines import baseline_parser, write_baseline_submission
from fashioncomp.cli import run_cli
from fashioncomp.data.dataset_reader import LabelledData, read_test, read_train
from fashioncomp.data.images import load_image

THUMBNAIL = 24
HIST_SIZE = 64                  # resolution the colour histogram is taken at
HSV_BINS = (12, 4, 4)           # hue x saturation x value cells
C = 0.05                        # inverse L2 strength: ~1.8k standardised features, ~3k images


def image_features(root: Path, file_paths: Sequence[str]) -> np.ndarray:
    """[N, 24*24*3 + 192]: thumbnail pixels in [0, 1] and the normalised HSV histogram."""
    feats = []
    for rel in file_paths:
        big = load_image(root / rel, HIST_SIZE)
        hsv = _hsv(big).reshape(-1, 3)
        hist, _ = np.histogramdd(hsv, bins=HSV_BINS, range=((0, 256),) * 3)
        thumb = load_image(root / rel, THUMBNAIL)
        feats.append(np.concatenate([np.asarray(thumb, np.float32).ravel() / 255.0,
                                     hist.ravel().astype(np.float32) / hsv.shape[0]]))
    return np.stack(feats)


def _hsv(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("HSV"))


class LogRegReference:
    """Fitted models: predict category labels and attribute sets from features."""

    def __init__(self, c: float = C, seed: int = 0) -> None:
        self.c, self.seed = c, seed
        self.scaler = StandardScaler()
        self.category: LogisticRegression | None = None
        self.attributes: list[LogisticRegression | float] = []

    def fit(self, features: np.ndarray, data: LabelledData) -> "LogRegReference":
        x = self.scaler.fit_transform(features)
        known = data.categories >= 0
        self.category = LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed)
        self.category.fit(x[known], data.categories[known])
        self.attributes = []
        for j in range(data.attributes.shape[1]):
            rows = data.attribute_known[:, j]
            y = data.attributes[rows, j]
            if y.min() == y.max():  # constant label: no model, predict the constant
                self.attributes.append(float(y[0]) if len(y) else 0.0)
                continue
            self.attributes.append(LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed).fit(x[rows], y))
        return self

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.category is not None, "fit first"
        x = self.scaler.transform(features)
        proba = np.stack([np.full(len(x), m) if isinstance(m, float) else m.predict_proba(x)[:, 1]
                          for m in self.attributes], axis=1)
        return self.category.predict(x), proba >= 0.5


def run(data_root: Path, out_dir: Path) -> Path:
    started = time.perf_counter()
    data, schema = read_train(data_root, check_images=False)
    model = LogRegReference().fit(image_features(data_root, data.file_paths), data)
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
