"""The linear stage: the linear model's out-of-fold probabilities, its blend weights and its fit on every row.

    runs/<name>/linear.npz   oof_category, oof_attributes (rows in train.csv order, NaN where no
                             fold model predicted), category_weight, attributes_weight, and the
                             fit on every row as arrays (model_<name> for fashioncomp.linear.apply.PARAMS)
    runs/<name>/linear.json  the weights, the out-of-fold score at each weight tried, seconds

The out-of-fold probabilities of fold k come from a linear model fitted on the other folds' rows
(the rows fold k's network learnt from), so the weights are chosen on rows neither model saw.
The thresholds stage tunes on the blended out-of-fold probabilities; the predict stage applies
the fit on every row to the test images (with numpy alone, `linear_probs`) and blends them alike,
so a Kaggle inference kernel that attaches the run's weights predicts a test set of its own.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from fashioncomp import stamps
from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.io import read_json, read_npz, write_json, write_npz
from fashioncomp.linear.blend import choose_weights
from fashioncomp.linear.features import array_features
from fashioncomp.linear.model import LinearModel
from fashioncomp.pipeline import LINEAR_NPZ, Run, labels_digest

__all__ = ["stage_linear"]


def _fit(features: np.ndarray, run: Run, rows: np.ndarray, data: LabelledData) -> LinearModel:
    cfg = run.config["linear"]
    model = LinearModel(run.schema.num_categories, c=float(cfg["c"]), seed=int(run.config["seed"]),
                        attributes="attributes" in cfg["tasks"])  # fits only what is blended
    return model.fit(features[rows], data.subset(rows))


def stage_linear(run: Run, force: bool = False) -> dict[str, Any] | None:
    """Fit per fold and on every row, choose the weights, write linear.npz; the summary (linear.json),
    or None without `linear.enabled`."""
    if not run.config["linear"]["enabled"]:
        print("linear: off (linear.enabled: false)")
        return None
    out, summary = run.dir / LINEAR_NPZ, run.dir / "linear.json"
    oof_path = run.dir / "oof.npz"
    data = run.train_data()
    folds = run.folds(data)
    inputs = {"oof.npz": stamps.digest_file(oof_path), "train.csv": labels_digest(data),
              "folds.csv": stamps.digest_arrays(folds),
              "config": run.config_digest("seed", "data", "metrics", "linear")}
    if stamps.up_to_date("linear", run.stamp("linear"), inputs, [out, summary], force):
        print(f"linear: {out} is up to date")
        return read_json(summary)
    started = time.perf_counter()
    oof = read_npz(oof_path, hint=f" (run `python -m fashioncomp oof --run {run.dir}` first)")
    features = array_features(run.images(data.file_paths)[0])
    cat = np.full(oof["category"].shape, np.nan, dtype=np.float32)
    attr = np.full(oof["attributes"].shape, np.nan, dtype=np.float32)
    covered = ~np.isnan(oof["category"][:, 0])
    for fold in np.unique(folds[covered]):
        held = np.flatnonzero(folds == fold)
        cat[held], attr[held] = _fit(features, run, np.flatnonzero(folds != fold), data).predict_proba(features[held])
    rows = np.flatnonzero(covered)
    weights = choose_weights(data.subset(rows), oof["category"][rows], oof["attributes"][rows], cat[rows], attr[rows],
                             run.decode_groups, run.attribute_metric, float(run.config["linear"]["max_weight"]),
                             tuple(run.config["linear"]["tasks"]))
    full = _fit(features, run, np.arange(len(data)), data).export()
    write_npz(out, oof_category=cat, oof_attributes=attr,
              category_weight=np.float64(weights.category), attributes_weight=np.float64(weights.attributes),
              **{f"model_{name}": value for name, value in full.items()})
    report = {"category_weight": weights.category, "attributes_weight": weights.attributes,
              "oof_scores_by_weight": {task: {str(w): s for w, s in by_weight.items()}
                                       for task, by_weight in weights.scores.items()},
              "attribute_f1": run.attribute_metric, "rows": int(covered.sum()),
              "seconds": round(time.perf_counter() - started, 1)}
    write_json(summary, report)
    stamps.record(run.stamp("linear"), inputs)
    cat_scores, attr_scores = weights.scores["category"], weights.scores["attributes"]
    parts = []
    if "category" in run.config["linear"]["tasks"]:
        parts.append(f"category weight {weights.category:g} (accuracy {cat_scores[0.0]:.4f} -> "
                     f"{cat_scores[weights.category]:.4f})")
    if "attributes" in run.config["linear"]["tasks"]:
        parts.append(f"attribute weight {weights.attributes:g} ({run.attribute_metric} F1 at 0.5 "
                     f"{attr_scores[0.0]:.4f} -> {attr_scores[weights.attributes]:.4f})")
    print(f"linear: logistic regression on thumbnails + HSV histograms, blended out of fold: {', '.join(parts)}; "
          f"{report['seconds']:.0f}s")
    return report
