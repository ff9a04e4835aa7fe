"""The ablation command: variants files, the default variants, and a tiny two-variant run."""
import math
import re
from pathlib import Path

import pytest
import yaml

from fashioncomp.ablate import (DEFAULT_VARIANTS, VariantResult, ablation_table, check_variants, load_variants,
                                main)
from fashioncomp.config import ConfigError, load_config
from fashioncomp.data.transforms import AUGMENT_PRESETS
from fashioncomp.losses import LOSSES
from fashioncomp.losses.weighting import WEIGHTINGS
from fashioncomp.models.heads import HEADS
from fashioncomp.task_weight_presets import TASK_WEIGHT_PRESETS
from fashioncomp.training.early_stopping import MONITORS

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.backbone=test_resnet", "train.epochs=1", "split.n_folds=2", "data.image_size=32",
        "train.batch_size=16", "predict.tta=[none]"]


def test_default_variants_resolve_and_cover_every_method():
    variants = load_variants(str(DEFAULT_VARIANTS))
    check_variants(variants, REPO / "configs" / "cpu.yaml", [])
    configs = [load_config(REPO / "configs" / "cpu.yaml", o) for o in variants.values()]
    assert {c["model"]["head"] for c in configs} == set(HEADS)
    assert {c["loss"]["weighting"] for c in configs} == set(WEIGHTINGS)
    assert {c["loss"][k] for c in configs for k in ("category", "group", "attribute")} == set(LOSSES)
    assert {c["data"]["use_groups"] for c in configs} == {True, False}
    assert any(c["train"]["mixup_alpha"] > 0 for c in configs) and any(c["train"]["cutmix_alpha"] > 0 for c in configs)
    assert any(c["train"]["ema"] for c in configs)
    weights = [c["loss"]["task_weights"] for c in configs]
    assert any(isinstance(w, dict) and w.get("attributes") == 0 for w in weights)
    assert any(isinstance(w, dict) and w.get("category") == 0 for w in weights)
    # the methods as their sources describe them (issue 14)
    assert set(TASK_WEIGHT_PRESETS) <= set(w for w in weights if isinstance(w, str))
    assert {c["augment"]["preset"] for c in configs} == set(AUGMENT_PRESETS)
    assert {c["train"]["early_stop_on"] for c in configs} == {c["train"]["checkpoint_on"] for c in configs} \
        == set(MONITORS)
    assert any(c["data"]["multilabel_group_tasks"] for c in configs)
    assert any(c["data"]["merge_rare_below"] > 0 for c in configs)


def test_variants_by_name_come_from_the_default_file():
    assert load_variants("multitask,category_only") == {
        "multitask": [], "category_only": ["loss.task_weights.attributes=0.0"]}
    with pytest.raises(ConfigError, match="unknown variant.*nope"):
        load_variants("multitask,nope")


@pytest.mark.parametrize("text,message", [
    ("a: model.head=latent\n", "must be a list"),
    ("'bad name': []\n", "variant name 'bad name'"),
    ("[1, 2]\n", "expected a mapping"),
    ("a: [model.head latent]\n", "must be a list of 'key=value'"),
])
def test_bad_variants_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "variants.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_variants(str(path))
    with pytest.raises(ConfigError, match="not found"):
        load_variants(str(tmp_path / "missing.yaml"))


def test_a_variant_with_an_unknown_key_fails_before_any_training():
    with pytest.raises(ConfigError, match="variant 'b'.*model.hed"):
        check_variants({"a": [], "b": ["model.hed=latent"]}, None, [])


def test_table_marks_the_best_value_of_each_column():
    def result(name, cat, mean_f1):
        return VariantResult(name, [], {"category_accuracy": cat, "attribute_mean_f1": mean_f1,
                                        "attribute_macro_f1": math.nan}, 12.3, 2, [])
    table = ablation_table([result("a", 0.5, 0.9), result("b", 0.7, 0.1)])
    rows = [line for line in table.splitlines() if line.startswith("| a ") or line.startswith("| b ")]
    assert rows == ["| a | (base recipe) | 0.5000 | **0.9000** | – | 12 | 2 |",
                    "| b | (base recipe) | **0.7000** | 0.1000 | – | 12 | 2 |"]


def parse_table(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("variant",) and not set(cells[0]) <= set("-:"):
            rows[cells[0]] = cells[1:]
    return rows


def test_ablation_trains_each_variant_once_and_writes_the_table(tiny_dataset, tmp_path, capsys):
    variants = tmp_path / "variants.yaml"
    variants.write_text(yaml.safe_dump({"multitask": [], "category_only": ["loss.task_weights.attributes=0.0"]},
                                       sort_keys=False))
    out, runs = tmp_path / "docs" / "ablation.md", tmp_path / "runs"
    argv = ["--config", str(REPO / "configs" / "default.yaml"), "--variants", str(variants), "--data",
            str(tiny_dataset), "--folds", "0", "--out", str(out), "--runs", str(runs), "--no-progress"]
    for override in TINY:
        argv += ["--set", override]
    assert main(argv) == 0

    text = out.read_text()
    rows = parse_table(text)
    assert list(rows) == ["multitask", "category_only"]
    assert rows["category_only"][0] == "`loss.task_weights.attributes=0.0`"
    for cells in rows.values():
        scores = [float(c.strip("*")) for c in cells[1:4]]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert float(cells[4]) >= 0 and cells[5] == "1"      # train time, 1 epoch of fold 0
    assert "category_only: attributes" in text                 # the single-task note
    assert re.search(r"folds \[0\] \(\d+ held-out images\)", text)

    for name in ("multitask", "category_only"):
        run = runs / f"ablation-{name}"
        assert (run / "fold_0" / "best.pt").is_file() and not (run / "fold_1").exists()
        assert (run / "oof_scores.json").is_file()
    assert load_config(runs / "ablation-category_only" / "config.yaml")["loss"]["task_weights"]["attributes"] == 0

    # rerun: every variant is reused, the table is the same
    mtime = (runs / "ablation-multitask" / "fold_0" / "best.pt").stat().st_mtime
    capsys.readouterr()
    assert main(argv) == 0
    assert "fold 0 already trained" in capsys.readouterr().out
    assert (runs / "ablation-multitask" / "fold_0" / "best.pt").stat().st_mtime == mtime
    assert parse_table(out.read_text()) == rows
