"""The valid range of every numeric config key, checked when a config is loaded.

A value outside its range is a config error naming the key, the value and the range, before any
stage runs (rather than an assertion or a NaN deep inside training). tests/test_config.py checks
that every numeric key of config.DEFAULTS has an entry here, so a key added without one fails.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fashioncomp.budget.duration import BudgetError, parse_duration


@dataclass(frozen=True)
class Range:
    low: float | None = None      # None: unbounded
    high: float | None = None
    low_open: bool = False        # True: the bound itself is excluded
    high_open: bool = False
    also: tuple[float, ...] = ()  # single values accepted besides the range (e.g. 0 = off)

    def contains(self, value: float) -> bool:
        if value in self.also:
            return True
        if math.isnan(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        low = None if self.low is None else f"{'above' if self.low_open else 'at least'} {self.low:g}"
        high = None if self.high is None else f"{'below' if self.high_open else 'at most'} {self.high:g}"
        text = " and ".join(part for part in (low, high) if part)
        return " or ".join([f"{v:g}" for v in self.also] + [text]) if self.also else text


UNIT = Range(0, 1)                       # probabilities, shares
PROBABILITY_BELOW_1 = Range(0, 1, high_open=True)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
COUNT = Range(1, 100_000)                # epochs, widths
SIDE = Range(8, 4096)                    # image side in pixels
SEED = Range(0, 2**32 - 1)
BATCH = Range(1, 65_536)

RANGES: dict[str, Range] = {
    "seed": SEED,
    "data.image_size": SIDE,
    "data.num_workers": Range(0, 256),
    "data.group_tolerance": Range(0, 0.5),
    "data.group_min_evidence": NON_NEGATIVE,
    "data.merge_rare_below": Range(0, 0.5),  # a share of the images; 0 = off
    "split.n_folds": Range(2, 100),
    "split.seed": SEED,
    "model.head_hidden": COUNT,
    "model.drop_rate": PROBABILITY_BELOW_1,
    "model.colour_bins": Range(0, 64),
    "model.colour_dim": COUNT,
    "model.latent_k": COUNT,
    "model.latent_l1": NON_NEGATIVE,
    "model.latent_l2": NON_NEGATIVE,
    "model.mlp_layers": Range(1, 16),
    "model.mlp_width_per_label": Range(1, 4096, also=(0,)),   # 0 = head_hidden wide
    "model.mlp_dropout": PROBABILITY_BELOW_1,
    "model.encoder_layers": Range(0, 64),
    "model.decoder_layers": Range(1, 64),
    "model.decoder_heads": Range(1, 256),
    "model.decoder_ffn": Range(1, 1_000_000, also=(0,)),     # 0 = 2 x head_hidden
    "model.decoder_dropout": PROBABILITY_BELOW_1,
    "loss.label_smoothing": PROBABILITY_BELOW_1,
    "loss.focal_gamma": NON_NEGATIVE,
    "loss.task_weights.*": NON_NEGATIVE,
    "loss.dwa_temperature": POSITIVE,
    "loss.asl_gamma_neg": NON_NEGATIVE,
    "loss.asl_gamma_pos": NON_NEGATIVE,
    "loss.asl_clip": PROBABILITY_BELOW_1,
    "train.epochs": COUNT,
    "train.batch_size": BATCH,
    "train.lr": Range(0, 10, low_open=True),
    "train.weight_decay": Range(0, 10),
    "train.warmup_epochs": Range(0, 100_000),
    "train.min_lr_ratio": UNIT,
    "train.ema_decay": Range(0, 1, low_open=True, high_open=True),
    "train.mixup_alpha": NON_NEGATIVE,
    "train.cutmix_alpha": NON_NEGATIVE,
    "train.mix_prob": UNIT,
    "train.patience": COUNT,
    "train.validate_last": COUNT,
    "train.min_delta": NON_NEGATIVE,
    "train.grad_clip": NON_NEGATIVE,     # 0 = off
    "train.threads": Range(1, 1024),
    "train.progressive_from": Range(8, 4096, also=(0,)),
    "train.progressive_until": Range(0, 1, low_open=True),
    "augment.hflip": UNIT,
    "augment.shift_scale_rotate": UNIT,
    "augment.max_shift": UNIT,
    "augment.max_scale": PROBABILITY_BELOW_1,
    "augment.max_rotate": Range(0, 180),
    "augment.brightness_contrast": UNIT,
    "augment.coarse_dropout": UNIT,
    "augment.crop_min_area": Range(0, 1, low_open=True),
    "thresholds.min_positives": Range(0, 1_000_000),
    "refit.epochs": COUNT,
    "refit.epochs_ratio": Range(0, 100, low_open=True),
    "refit.blend": UNIT,
    "refit.distill": UNIT,
    "refit.pseudo_label": Range(0.5, 1, low_open=True, also=(0,)),  # a confidence; 0 = off
    "linear.c": POSITIVE,
    "linear.max_weight": UNIT,
    "budget.minutes": POSITIVE,          # or a duration such as 20m, 1.5h, 90s
    "budget.folds": Range(2, 100),       # each entry of the list
    "budget.image_sizes": SIDE,
    "budget.min_epochs": COUNT,
    "budget.max_epochs": COUNT,
    "budget.target_epochs": COUNT,
    "budget.safety": Range(0, 1, low_open=True),
    "budget.fixed_seconds": NON_NEGATIVE,
    "predict.batch_size": BATCH,
}
# numeric keys whose default None means "decided elsewhere" (None stays valid)
NULLABLE = {"refit.epochs", "train.patience", "train.validate_last", "train.threads", "budget.minutes",
            "model.mlp_dropout", "model.decoder_dropout"}
DURATIONS = {"budget.minutes"}


def range_problem(name: str, value: Any) -> str | None:
    """Why `value` is not valid for the numeric key `name` (None if it is, or if `name` has no range)."""
    spec = RANGES.get(name)
    if spec is None or value is None:
        return None
    if name in DURATIONS and isinstance(value, str):
        try:
            parse_duration(value)
        except BudgetError:
            return f"must be a positive duration like 20m, 1.5h or 90s (or minutes), got {value!r}"
        return None
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            return f"must hold numbers, got {value!r}"
        if not spec.contains(float(item)):
            where = f"entry {item!r} of {value!r}" if isinstance(value, list) else repr(value)
            return f"must be {spec.describe()}, got {where}"
    return None
