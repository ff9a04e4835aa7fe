"""Experiment configuration: built-in defaults, overridden by a recipe YAML, then by `--set`.

Every key a recipe may use exists in DEFAULTS; an unknown key is an error that lists the valid
keys of its section with a "did you mean". The resolved config is saved in the run directory,
so a run can always be reproduced from `runs/<name>/config.yaml` alone.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml
from fashioncomp.errors import UserError

DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "data": {
        "root": None,            # dataset root; None -> synthetic dataset under input/
        "image_size": 64,        # working resolution (square)
        "cache": True,           # decode + resize once into a memory-mapped uint8 array
        "num_workers": 0,        # DataLoader workers; 0 = load in the main process (fast with the cache)
        "use_groups": True,      # predict multiclass attribute groups with a softmax each
    },
    "split": {
        "n_folds": 5,
        "seed": 42,
    },
    "model": {
        "backbone": "resnet18",
        "pretrained": False,     # the competition forbids downloaded weights
        "checkpoint": None,      # optional local file with backbone weights
        "backbone_kwargs": {},   # passed to timm.create_model
        "head": "linear",        # see fashioncomp.models.heads.HEADS
        "head_hidden": 256,
        "drop_rate": 0.2,
    },
    "loss": {
        "category": "ce",        # see fashioncomp.losses.LOSSES
        "attribute": "bce",
        "group": "ce",
        "label_smoothing": 0.0,
        "focal_gamma": 2.0,
        "weighting": "fixed",    # fixed | dwa | uncertainty
        "task_weights": {"category": 1.0, "attributes": 1.0},
        "dwa_temperature": 2.0,
    },
    "train": {
        "epochs": 10,
        "batch_size": 64,
        "lr": 2.0e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 1,
        "min_lr_ratio": 0.01,
        "amp": True,             # mixed precision, CUDA only
        "channels_last": True,
        "compile": False,
        "ema": False,
        "ema_decay": 0.998,
        "mixup_alpha": 0.0,
        "cutmix_alpha": 0.0,
        "mix_prob": 1.0,
        "patience": None,        # None -> int(max(6, 1 + sqrt(epochs)))
        "min_delta": 0.001,
        "grad_clip": 5.0,
        "deterministic": False,
        "threads": None,         # torch intra-op threads; None = torch default
    },
    "augment": {
        "hflip": 0.5,
        "shift_scale_rotate": 0.5,
        "max_shift": 0.08,
        "max_scale": 0.15,
        "max_rotate": 10,
        "brightness_contrast": 0.3,  # no hue jitter: colour is a label
        "coarse_dropout": 0.0,
    },
    "thresholds": {
        "metric": "mcc",         # mcc | f1
        "min_positives": 10,
        "at_least_one": False,
    },
    "predict": {
        "tta": ["none", "hflip"],
        "batch_size": 256,
    },
}


class ConfigError(UserError, ValueError):
    """A configuration file or override is invalid."""


def _check_keys(user: dict[str, Any], defaults: dict[str, Any], where: str, source: str) -> None:
    for key, value in user.items():
        if key not in defaults:
            valid = sorted(defaults)
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{source}: unknown config key '{where}{key}'.{hint} Valid keys here: {', '.join(valid)}"
            )
        # free-form mappings (e.g. backbone_kwargs) default to {} and are not checked further
        if isinstance(defaults[key], dict) and defaults[key]:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{where}{key}' must be a mapping, got {value!r}")
            _check_keys(value, defaults[key], f"{where}{key}.", source)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ["train.epochs=3", "model.backbone=resnet34"] into a nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got '{pair}'")
        dotted, raw = pair.split("=", 1)
        node = tree
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return tree


def load_config(path: Path | str | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- recipe file (if any) <- `key=value` overrides, validated."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        _check_keys(user, DEFAULTS, "", str(path))
        config = _merge(config, user)
    extra = parse_overrides(overrides)
    _check_keys(extra, DEFAULTS, "", "--set")
    return _merge(config, extra)


def dump_config(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def patience_for(train_cfg: dict[str, Any]) -> int:
    """Early-stopping patience: explicit, or int(max(6, 1 + sqrt(epochs)))."""
    if train_cfg.get("patience") is not None:
        return int(train_cfg["patience"])
    return int(max(6, 1 + train_cfg["epochs"] ** 0.5))
