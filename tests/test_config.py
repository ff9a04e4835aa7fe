"""Config loading: unknown keys (recipe and --set) with a "did you mean", value types, overrides."""
from __future__ import annotations

from pathlib import Path

import pytest

from fashioncomp.config import DEFAULTS, FREE_FORM, ConfigError, load_config, parse_overrides
from fashioncomp.config_ranges import NULLABLE, RANGES, Range

REPO = Path(__file__).resolve().parents[1]


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("recipe", ["default.yaml", "cpu.yaml", "plain.yaml", "gpu.yaml"])
def test_shipped_recipes_load(recipe):
    assert set(load_config(REPO / "configs" / recipe)) == set(DEFAULTS)


def test_unknown_key_in_recipe_lists_valid_keys_and_suggests(tmp_path):
    recipe = _recipe(tmp_path, "train:\n  epoch: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(recipe)
    message = str(info.value)
    assert str(recipe) in message and "unknown config key 'train.epoch'" in message
    assert "Did you mean 'train.epochs'?" in message
    assert "Valid keys in 'train':" in message and "batch_size" in message and "warmup_epochs" in message


def test_unknown_top_level_section_in_recipe(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'\. Did you mean 'train'\?.*Valid keys at the top level: augment, budget, data"):
        load_config(_recipe(tmp_path, "trian:\n  epochs: 3\n"))


def test_unknown_key_in_set_suggests_and_lists():
    with pytest.raises(ConfigError, match=r"^--set: unknown config key 'model\.head_hiden'\. Did you mean 'model\.head_hidden'\?.*Valid keys in 'model': .*backbone"):
        load_config(None, ["model.head_hiden=3"])


def test_key_in_the_wrong_section_suggests_where_it_lives():
    with pytest.raises(ConfigError, match=r"unknown config key 'epochs'\. Did you mean 'train\.epochs'\?"):
        load_config(None, ["epochs=3"])
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.n_folds'\. Did you mean 'split\.n_folds'\?"):
        load_config(None, ["data.n_folds=3"])


def test_nothing_close_gives_no_guess_but_lists_keys():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["split.zzzzzz=1"])
    assert "Did you mean" not in str(info.value) and "Valid keys in 'split': n_folds, seed" in str(info.value)


def test_overrides_win_over_recipe_and_defaults(tmp_path):
    recipe = _recipe(tmp_path, "train:\n  epochs: 3\n  lr: 0.1\n")
    config = load_config(recipe, ["train.epochs=5", "model.backbone_kwargs.drop_path_rate=0.1"])
    assert config["train"]["epochs"] == 5 and config["train"]["lr"] == 0.1
    assert config["train"]["batch_size"] == DEFAULTS["train"]["batch_size"]
    assert config["model"]["backbone_kwargs"] == {"drop_path_rate": 0.1}  # free-form mapping
    assert DEFAULTS["train"]["epochs"] == 10 and DEFAULTS["model"]["backbone_kwargs"] == {}  # not mutated


@pytest.mark.parametrize("override, expected", [
    ("train.lr=1e-3", 1e-3),       # YAML reads 1e-3 as a string: parsed as a number
    ("train.lr=1", 1.0),
    ("train.epochs=4.0", 4),
    ("train.amp=false", False),
    ("train.patience=7", 7),       # default None: any value
    ("predict.tta=[none]", ["none"]),
])
def test_values_are_normalised_to_the_default_type(override, expected):
    key, _ = override.split("=", 1)
    section, name = key.split(".")
    value = load_config(None, [override])[section][name]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("override, message", [
    ("train.epochs=abc", r"'train\.epochs' must be an integer \(default: 10\), got 'abc'"),
    ("train.epochs=2.5", r"'train\.epochs' must be an integer"),
    ("train.lr=fast", r"'train\.lr' must be a number"),
    ("train.amp=1", r"'train\.amp' must be true or false"),
    ("train.epochs=true", r"'train\.epochs' must be an integer"),
    ("predict.tta=hflip", r"'predict\.tta' must be a list"),
    ("model.backbone=[a, b]", r"'model\.backbone' must be a string"),
    ("train=3", r"'train' must be a mapping"),
    ("train.epochs.x=1", r"'train\.epochs' is a single value .* not a section"),
    ("train.epochs=", r"'train\.epochs' must be an integer .* got None"),
])
def test_wrong_value_types_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_wrong_type_in_recipe_names_the_file(tmp_path):
    recipe = _recipe(tmp_path, "split:\n  n_folds: five\n")
    with pytest.raises(ConfigError, match=rf"{recipe}: 'split\.n_folds' must be an integer"):
        load_config(recipe)


def test_empty_mapping_in_recipe_is_allowed(tmp_path):
    config = load_config(_recipe(tmp_path, "model:\n  backbone_kwargs:\n"))
    assert config["model"]["backbone_kwargs"] == {}


@pytest.mark.parametrize("pairs, message", [
    (["train.epochs"], "expects key=value"),
    (["train..epochs=3"], "is not a dotted key"),
    (["=3"], "is not a dotted key"),
    (["train.epochs=[1,"], "not valid YAML"),
    (["train.epochs=3", "train.epochs.x=1"], "conflicts with an earlier --set of 'train.epochs'"),
    (["train.epochs=3", "train=4"], "conflicts with an earlier --set inside 'train'"),
])
def test_malformed_overrides(pairs, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_overrides(pairs)


@pytest.mark.parametrize("text, message", [
    ("train: [1, 2", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping at the top level"),
])
def test_malformed_recipe_files(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_recipe(tmp_path, text))


def test_missing_and_unreadable_recipe(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ConfigError, match="binary.yaml"):
        load_config(binary)


def test_empty_recipe_is_the_defaults(tmp_path):
    assert load_config(_recipe(tmp_path, "")) == load_config(None)


# --- every numeric key has a range, checked at load ------------------------------------------------

def _numeric_keys(tree: dict, prefix: str = "") -> list[str]:
    """Dotted keys of DEFAULTS with a number (or a list of numbers) as default, plus the numeric
    keys whose default is None; free-form mappings stand as '<section>.*'."""
    keys = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if name in FREE_FORM:
            keys.append(f"{name}.*")
        elif isinstance(value, dict):
            keys.extend(_numeric_keys(value, f"{name}."))
        elif (isinstance(value, (int, float)) and not isinstance(value, bool)) or name in NULLABLE \
                or name in ("budget.folds", "budget.image_sizes"):
            keys.append(name)
    return keys


NUMERIC_KEYS = _numeric_keys(DEFAULTS)


def _outside(spec: Range) -> list[float]:
    """Values just outside `spec` on each bounded side."""
    bad = []
    if spec.low is not None:
        bad.append(spec.low if spec.low_open else spec.low - (1 if float(spec.low).is_integer() else 0.01))
    if spec.high is not None:
        bad.append(spec.high if spec.high_open else spec.high + 1)
    return [b for b in bad if b not in spec.also]


def test_every_numeric_key_has_a_range():
    missing = [k for k in NUMERIC_KEYS if k not in RANGES]
    assert not missing, f"numeric config keys without a range in fashioncomp/config_ranges.py: {missing}"
    assert set(RANGES) <= set(NUMERIC_KEYS), "ranges for keys that do not exist"
    assert len(NUMERIC_KEYS) > 50


def test_defaults_and_shipped_recipes_are_in_range():
    for recipe in sorted((REPO / "configs").glob("*.yaml")):
        if recipe.name != "ablation_variants.yaml":
            load_config(recipe)  # raises on any value out of range


@pytest.mark.parametrize("key", NUMERIC_KEYS)
def test_out_of_range_value_is_a_config_error_naming_key_value_and_range(key):
    spec = RANGES[key]
    bad_values = _outside(spec)
    assert bad_values, f"{key}: a range with no bound"
    shown = key.replace("*", "category")
    for bad in bad_values:
        value = [bad] if key in ("budget.folds", "budget.image_sizes") else bad
        with pytest.raises(ConfigError) as info:
            load_config(None, [f"{shown}={value}"])
        message = str(info.value)
        assert f"'{shown}'" in message and spec.describe() in message and f"{bad:g}" in message.replace(".0,", ",")


@pytest.mark.parametrize("override,message", [
    ("train.epochs=0", "'train.epochs' must be at least 1 and at most 100000, got 0"),
    ("refit.pseudo_label=0.4", "'refit.pseudo_label' must be 0 or above 0.5 and at most 1, got 0.4"),
    ("train.lr=.nan", "'train.lr' must be above 0 and at most 10, got nan"),
    ("budget.minutes=-5m", "'budget.minutes' must be a positive duration like 20m"),
    ("budget.folds=[2, 1]", "'budget.folds' must be at least 2 and at most 100, got entry 1 of [2, 1]"),
    ("budget.image_sizes=[a]", "'budget.image_sizes' must hold numbers"),
])
def test_range_messages(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)


def test_in_range_edges_and_off_values_are_accepted():
    config = load_config(None, ["refit.pseudo_label=0", "refit.pseudo_label=1", "train.progressive_from=0",
                                "budget.minutes=20m", "train.patience=null", "augment.hflip=1",
                                "loss.task_weights.category=0"])
    assert config["refit"]["pseudo_label"] == 1 and config["budget"]["minutes"] == "20m"
