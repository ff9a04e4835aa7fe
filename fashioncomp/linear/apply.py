"""A fitted linear model applied from its exported arrays, with numpy alone: the predict stage runs
in inference kernels that do not install scikit-learn (fashioncomp.kaggle.bundle)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["PARAMS", "linear_probs"]

# what LinearModel.export writes (and linear.npz keeps, for the fit on every row)
PARAMS = ("mean", "scale", "category_coef", "category_intercept", "category_classes", "attribute_coef",
          "attribute_intercept", "attribute_constant")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def linear_probs(params: Mapping[str, np.ndarray], features: np.ndarray, num_categories: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """([N, num_categories] category probabilities, [N, A] attribute probabilities) of `features`.

    As scikit-learn's LogisticRegression.predict_proba: softmax of the logits for several classes,
    the sigmoid for two (one row of coefficients); categories never seen in training get 0; an
    attribute with a constant (not NaN) is that constant.
    """
    x = (np.asarray(features, dtype=np.float64) - params["mean"]) / params["scale"]
    logits = x @ params["category_coef"].T + params["category_intercept"]
    if logits.shape[1] == 1:
        p = _sigmoid(logits[:, 0])
        probs = np.stack([1.0 - p, p], axis=1)
    else:
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
    category = np.zeros((len(x), num_categories), dtype=np.float32)
    category[:, params["category_classes"]] = probs
    constant = params["attribute_constant"]
    attributes = _sigmoid(x @ params["attribute_coef"].T + params["attribute_intercept"])
    attributes = np.where(np.isnan(constant), attributes, constant)
    return category, attributes.astype(np.float32)
