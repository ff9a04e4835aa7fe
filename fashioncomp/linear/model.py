"""Logistic regression per task on the linear features (`features`)."""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.linear.apply import linear_probs

__all__ = ["C", "LinearModel"]

C = 0.05  # inverse L2 strength: ~1.8k standardised features, ~3k images


class LinearModel:
    """One multinomial model for the category, one binary model per attribute (rows with a known
    label only); an attribute whose known labels are all equal is predicted as that constant."""

    def __init__(self, num_categories: int, c: float = C, seed: int = 0, attributes: bool = True) -> None:
        # attributes=False fits the category alone (its attribute probabilities are then all 0)
        self.num_categories, self.c, self.seed, self.fit_attributes = num_categories, c, seed, attributes
        self.num_attributes = 0
        self.scaler = StandardScaler()
        self.category: LogisticRegression | None = None
        self.attributes: list[LogisticRegression | float] = []

    def _fit_one(self, x: np.ndarray, y: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed).fit(x, y)

    def fit(self, features: np.ndarray, data: LabelledData) -> "LinearModel":
        x = self.scaler.fit_transform(features)
        known = data.categories >= 0
        self.category = self._fit_one(x[known], data.categories[known])
        self.attributes = []
        self.num_attributes = data.attributes.shape[1]
        for j in range(self.num_attributes if self.fit_attributes else 0):
            rows = data.attribute_known[:, j]
            y = data.attributes[rows, j]
            if not len(y) or y.min() == y.max():  # nothing to separate: predict the constant
                self.attributes.append(float(y[0]) if len(y) else 0.0)
            else:
                self.attributes.append(self._fit_one(x[rows], y))
        return self

    def export(self) -> dict[str, np.ndarray]:
        """The fitted model as arrays (fashioncomp.linear.apply.PARAMS), for `linear_probs`."""
        assert self.category is not None, "fit first"
        n_features = len(self.scaler.mean_)
        coef = np.zeros((self.num_attributes, n_features))
        intercept = np.zeros(self.num_attributes)
        constant = np.full(self.num_attributes, np.nan)
        constant[len(self.attributes):] = 0.0  # attributes not fitted (attributes=False) are predicted 0
        for j, m in enumerate(self.attributes):
            if isinstance(m, float):
                constant[j] = m
            else:
                coef[j], intercept[j] = m.coef_[0], m.intercept_[0]
        return {"mean": self.scaler.mean_, "scale": self.scaler.scale_, "category_coef": self.category.coef_,
                "category_intercept": self.category.intercept_, "category_classes": self.category.classes_,
                "attribute_coef": coef, "attribute_intercept": intercept, "attribute_constant": constant}

    def predict_proba(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([N, num_categories] category probabilities, [N, A] attribute probabilities)."""
        return linear_probs(self.export(), features, self.num_categories)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(category labels [N], attribute decisions [N, A] at probability 0.5)."""
        category, attributes = self.predict_proba(features)
        return category.argmax(axis=1), attributes >= 0.5
