"""Experiment configuration: built-in defaults, overridden by a recipe YAML, then by `--set`.

Every key a recipe may use exists in DEFAULTS; an unknown key is an error that lists the valid
keys of its section with a "did you mean". The resolved config is saved in the run directory,
so a run can always be reproduced from `runs/<name>/config.yaml` alone.
"""
from __future__ import annotations

import contextlib
import copy
import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml

from fashioncomp.config_ranges import range_problem
from fashioncomp.errors import UserError
from fashioncomp.task_weight_presets import TASK_WEIGHT_PRESETS
from fashioncomp.textfile import TextFileError, read_text_file

DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "data": {
        "root": None,            # dataset root; None -> synthetic dataset under input/
        "image_size": 64,        # working resolution (square)
        "cache": True,           # decode + resize once into a memory-mapped uint8 array
        "num_workers": 0,        # DataLoader workers; 0 = load in the main process (fast with the cache)
        "use_groups": True,      # predict multiclass attribute groups with a softmax each
        "schema": None,          # a schema.json to use instead of <root>/schema.json
        "discover_groups": True, # no groups in the schema: find mutually exclusive attributes in the labels
        "group_tolerance": 0.01, # discovery: share of an attribute's images that may clash (label noise)
        "group_min_evidence": 5.0,  # discovery: expected clashes if independent, needed to call a set a group
        "multilabel_group_tasks": False,  # each multilabel group its own sigmoid task (head, loss, weight)
        "merge_rare_below": 0.0, # attributes on fewer than this share of the images -> "other" (0 = off)
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
        "colour_bins": 0,        # >0: add an embedded RGB histogram (bins^3 cells) to the features
        "colour_dim": 64,
        "latent_k": 16,          # latent head: number of shared latent task vectors (k)
        "latent_l1": 1.0e-4,     # latent head: L1 weight on the combination weights S
        "latent_l2": 1.0e-4,     # latent head: squared-Frobenius weight on the latent matrix L
        "latent_alternate": "off",  # latent head: off | epoch | step: alternate training L and S (else jointly)
        "mlp_layers": 1,         # shared_mlp / private_mlp heads: dense layers in the stack (source: 2)
        "mlp_width_per_label": 0,  # mlp heads: 0 = head_hidden wide; else this x the labels served (source: 16 / 8)
        "mlp_dropout": None,     # mlp heads: dropout after each dense layer; None = drop_rate (source: 0.5)
        "encoder_layers": 0,     # query2label head: transformer encoder layers over the feature tokens (source: 1)
        "decoder_layers": 1,     # query2label head: transformer decoder layers (source: 2)
        "decoder_heads": 4,      # query2label head: attention heads (must divide head_hidden)
        "decoder_ffn": 0,        # query2label head: feed-forward width; 0 = 2 x head_hidden (source: 3072)
        "decoder_dropout": None,  # query2label head: transformer dropout; None = drop_rate (source: 0.3)
        "decoder_queries": "task",  # query2label head: task (one query per task) | group (source)
    },
    "loss": {
        "category": "ce",        # see fashioncomp.losses.LOSSES
        "attribute": "bce",
        "group": "ce",
        "label_smoothing": 0.0,
        "focal_gamma": 2.0,
        "weighting": "fixed",    # fixed | dwa | dwa_attribute | uncertainty
        "task_weights": {"category": 1.0, "attributes": 1.0},  # task -> weight, or a preset: decay_0.95
        "dwa_temperature": 2.0,
        "asl_gamma_neg": 4.0,    # asl: focusing parameter of the negatives
        "asl_gamma_pos": 0.0,    # asl: focusing parameter of the positives
        "asl_clip": 0.05,        # asl: probability margin shifted onto the negatives
    },
    "train": {
        "epochs": 10,
        "batch_size": 64,
        "lr": 2.0e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 1,
        "min_lr_ratio": 0.01,
        "amp": True,             # mixed precision: CUDA, and CPUs with native bf16 (AVX512-BF16, AMX)
        "channels_last": True,
        "compile": False,
        "ema": False,
        "ema_decay": 0.998,
        "mixup_alpha": 0.0,
        "cutmix_alpha": 0.0,
        "mix_prob": 1.0,
        "patience": None,        # None -> int(max(6, 1 + sqrt(epochs)))
        "min_delta": 0.001,
        "early_stop_on": "score",  # score | loss: what early stopping watches on the held-out fold
        "validate_last": None,   # N: validate a fold only in its last N epochs (None = every epoch)
        "checkpoint_on": "score",  # score | loss: what best.pt is chosen by
        "grad_clip": 5.0,
        "deterministic": False,
        "threads": None,         # torch intra-op threads; None = torch default
        "progressive_from": 0,   # >0: first epochs at this side, growing to data.image_size (0 = off)
        "progressive_until": 0.5,  # share of the epochs after which training is at data.image_size
    },
    "augment": {
        "preset": "default",     # default (the keys below) | report | random_crop
        "hflip": 0.5,
        "shift_scale_rotate": 0.5,
        "max_shift": 0.08,
        "max_scale": 0.15,
        "max_rotate": 10,
        "brightness_contrast": 0.3,  # no hue jitter: colour is a label
        "coarse_dropout": 0.0,
        "crop_min_area": 0.5,    # random_crop preset: smallest share of the image area a crop keeps
    },
    "metrics": {
        # the assignment's attribute "Mean F1" is not defined further: samples (F1 per image, averaged
        # over images) | macro (per attribute, averaged over attributes) | micro (every decision pooled).
        # best.pt, the thresholds and the report's headline follow it (fashioncomp.metrics.ATTRIBUTE_F1)
        "attribute_f1": "samples",
    },
    "thresholds": {
        "metric": "mcc",         # mcc | f1: each attribute's starting threshold, then refined for metrics.attribute_f1
        "min_positives": 10,
        "at_least_one": "auto",  # every image gets its most probable attribute; auto = if every training image has one
    },
    "refit": {
        "enabled": False,        # after the folds, one more network on every training row
        "epochs": None,          # None = epochs_ratio x the folds' epochs (train.epochs, or the budget plan's)
        "epochs_ratio": 1.0,     # the refit's epochs per fold epoch: it learns from every row, so it earns more
        "blend": 0.5,            # its weight in the test prediction; the fold ensemble has the rest
        "distill": 0.0,          # weight of the folds' out-of-fold probabilities in its targets (0 = labels only)
        "pseudo_label": 0.0,     # >0: test images the folds predict with this confidence join its rows
    },
    "linear": {
        "enabled": False,        # blend logistic regression on thumbnails + HSV histograms into the networks (fashioncomp.linear)
        "c": 0.05,               # its inverse L2 strength
        "max_weight": 0.5,       # largest blend weight tried; the weight per task is chosen out of fold
        # the tasks blended (the others keep the networks alone). Not the attributes by default: their
        # out-of-fold weight, chosen against the 2-fold models, was too large for the stronger refit
        # blend of the test prediction (README Results)
        "tasks": ["category"],
    },
    "budget": {
        "minutes": None,         # wall-clock budget of the whole pipeline; None = train.epochs as given
        "folds": [],             # fold counts the planner may choose; [] = split.n_folds (pinned)
        "image_sizes": [],       # image sizes the planner may choose; [] = data.image_size (pinned)
        "min_epochs": 1,
        "max_epochs": 100,
        "target_epochs": 15,     # epochs per fold preferred over a larger image or more folds
        "safety": 0.92,          # share of the budget planned; the rest absorbs drift
        "fixed_seconds": 20.0,   # image cache, thresholds, submission, report (stage start-ups are measured)
    },
    "predict": {
        "tta": ["none", "hflip"],
        "batch_size": 256,
    },
    "submission": {              # what make_submission writes (README "Submission formats")
        "format": "two_csv",     # two_csv | single_csv | image_label_ids | long (submission.SUBMISSION_FORMATS)
        "image_id": "path",      # path: test.csv's file_path as is | stem: its file name, no folders or extension
        "label_ids": "prefixed", # image_label_ids: prefixed (category 3 -> c3, attribute 7 -> a7) | offset (-> C+7)
        "columns": {},           # the format's column -> the header the competition wants, e.g. {image_id: ImageId}
    },
}


# mappings whose keys are checked where they are used (task names depend on the dataset)
FREE_FORM = {"loss.task_weights"}
# free-form mappings that may also be given as the name of a preset
PRESETS = {"loss.task_weights": TASK_WEIGHT_PRESETS}
# switches that may also be "auto": decided from the data when the stage runs
AUTO_SWITCHES = {"thresholds.at_least_one"}
# keys that name one of a few choices, checked at load (fashioncomp.metrics.ATTRIBUTE_F1 has the same names;
# listed here so that loading a config imports no numpy)
CHOICES: dict[str, tuple[str, ...]] = {
    "metrics.attribute_f1": ("samples", "macro", "micro"),
    # fashioncomp.submission: SUBMISSION_FORMATS, IMAGE_IDS, LABEL_ID_STYLES
    "submission.format": ("two_csv", "single_csv", "image_label_ids", "long"),
    "submission.image_id": ("path", "stem"),
    "submission.label_ids": ("prefixed", "offset"),
}

# list keys whose entries name one of a few choices (at least one entry)
SUBSETS: dict[str, tuple[str, ...]] = {
    "linear.tasks": ("category", "attributes"),  # fashioncomp.linear.blend.TASKS
}


class ConfigError(UserError, ValueError):
    """A configuration file or override is invalid."""


def _dotted_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        out.append(f"{prefix}{key}")
        if isinstance(value, dict) and value:
            out.extend(_dotted_keys(value, f"{prefix}{key}."))
    return out


def _unknown_key(key: str, valid: list[str], where: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(str(key), valid, n=1)
    if close:
        guess = f"{where}{close[0]}"
    else:  # maybe the right name in another section (e.g. 'epochs' -> 'train.epochs')
        by_leaf = {dotted.rsplit(".", 1)[-1]: dotted for dotted in reversed(_dotted_keys(DEFAULTS))}
        leaf = difflib.get_close_matches(str(key), list(by_leaf), n=1)
        guess = by_leaf[leaf[0]] if leaf else ""
    hint = f" Did you mean '{guess}'?" if guess else ""
    section = f"in '{where.rstrip('.')}'" if where else "at the top level"
    return ConfigError(f"{source}: unknown config key '{where}{key}'.{hint} Valid keys {section}: {', '.join(valid)}")


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}


def _check_value(value: Any, default: Any, name: str, source: str) -> Any:
    """`value` as the type of its default (numbers given as strings, e.g. '1e-3', are parsed)."""
    kind = type(default)
    if name in AUTO_SWITCHES:
        if isinstance(value, bool) or value == "auto":
            return value
        raise ConfigError(f"{source}: '{name}' must be true, false or auto (default: {default!r}), got {value!r}")
    if name in CHOICES:
        if value in CHOICES[name]:
            return value
        raise ConfigError(f"{source}: '{name}' must be one of {', '.join(CHOICES[name])} (default: {default!r}), "
                          f"got {value!r}")
    if name in SUBSETS:
        if isinstance(value, list) and value and all(v in SUBSETS[name] for v in value):
            return value
        raise ConfigError(f"{source}: '{name}' must be a non-empty list of {', '.join(SUBSETS[name])} "
                          f"(default: {default!r}), got {value!r}")
    if default is None or kind not in _TYPE_NAMES:  # untyped keys (default None) take any value
        return value
    if isinstance(value, bool) or kind is bool:  # a bool is an int to Python, not to a config
        if isinstance(value, bool) and kind is bool:
            return value
    elif kind is float and isinstance(value, (int, float, str)):
        with contextlib.suppress(ValueError):
            return float(value)
    elif kind is int and isinstance(value, (int, float, str)):
        if isinstance(value, int):
            return value
        with contextlib.suppress(ValueError):
            number = float(value)  # "3", 3.0, "1e3"
            if number.is_integer():
                return int(number)
    elif isinstance(value, kind):  # str, list
        return value
    raise ConfigError(f"{source}: '{name}' must be {_TYPE_NAMES[kind]} (default: {default!r}), got {value!r}")


def _check_keys(user: dict[str, Any], defaults: dict[str, Any], where: str, source: str) -> None:
    """Unknown keys and values of the wrong type are errors; values are normalised in place."""
    for key, value in list(user.items()):
        if key not in defaults:
            raise _unknown_key(key, sorted(defaults), where, source)
        default = defaults[key]
        if isinstance(default, dict):
            if value is None:  # an empty YAML mapping
                user[key] = value = {}
            presets = PRESETS.get(f"{where}{key}")
            if presets is not None and not isinstance(value, dict):
                if isinstance(value, str) and value in presets:
                    continue
                raise ConfigError(f"{source}: '{where}{key}' must be a mapping of task name -> weight or one of the "
                                  f"presets {', '.join(sorted(presets))}, got {value!r}")
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{where}{key}' must be a mapping, got {value!r}")
            # free-form mappings (e.g. backbone_kwargs) default to {} and are not checked further
            if default and f"{where}{key}" not in FREE_FORM:
                _check_keys(value, default, f"{where}{key}.", source)
            for name, item in value.items() if f"{where}{key}" in FREE_FORM else ():
                _check_range(f"{where}{key}.*", item, source, shown=f"{where}{key}.{name}")
        elif isinstance(value, dict):
            raise ConfigError(f"{source}: '{where}{key}' is a single value (default: {default!r}), "
                              f"not a section; got {value!r}")
        else:
            user[key] = _check_value(value, default, f"{where}{key}", source)
            _check_range(f"{where}{key}", user[key], source)


def _check_range(name: str, value: Any, source: str, shown: str | None = None) -> None:
    problem = range_problem(name, value)
    if problem:
        raise ConfigError(f"{source}: '{shown or name}' {problem}")


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
        parts = [part.strip() for part in dotted.strip().split(".")]
        if not all(parts):
            raise ConfigError(f"--set '{pair}': '{dotted}' is not a dotted key like train.epochs")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set '{pair}': the value is not valid YAML ({exc.__class__.__name__})") from None
        node = tree
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set '{pair}' conflicts with an earlier --set of '{'.'.join(parts[:depth + 1])}'")
        if isinstance(node.get(parts[-1]), dict):
            raise ConfigError(f"--set '{pair}' conflicts with an earlier --set inside '{dotted}'")
        node[parts[-1]] = value
    return tree


def load_config(path: Path | str | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults <- recipe file (if any) <- `key=value` overrides, validated."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            user = yaml.safe_load(read_text_file(path)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        except TextFileError as exc:
            raise ConfigError(str(exc)) from None
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
