"""The multi-task methods as their sources describe them, each a config option (issue 14):
a task per multilabel group, decay_0.95 task weights, early stopping on the validation loss,
rare-label merging, DWA per attribute and the augmentation presets."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from fashioncomp.config import ConfigError, load_config, patience_for
from fashioncomp.data.dataset_reader import LabelledData, read_test
from fashioncomp.data.schema import AttributeGroup, Schema
from fashioncomp.data.torch_dataset import to_model_input
from fashioncomp.data.transforms import AUGMENT_PRESETS, create_train_transform
from fashioncomp.losses import create_task_losses
from fashioncomp.losses.weighting import AttributeDynamicWeightAverage, TaskWeighting, create_weighting
from fashioncomp.make_submission import make_submission
from fashioncomp.models import create_model
from fashioncomp.pipeline import (Run, init_run, stage_oof, stage_predict, stage_split, stage_thresholds,
                                  stage_train)
from fashioncomp.report.context import load_context
from fashioncomp.report.decisions import section_label_decisions
from fashioncomp.tasks import attribute_probabilities, build_tasks, encode_targets, tasks_from_config
from fashioncomp.training import train as train_module
from fashioncomp.training.early_stopping import plateau_for

TINY = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=1",
        "train.deterministic=true", "predict.tta=[none]"]

# colour (multiclass) 0-2, parts (multilabel) 3-5, ungrouped 6-7
SCHEMA = Schema(("a", "b", "c"), tuple(f"attr{i}" for i in range(8)),
                (AttributeGroup("colour", "multiclass", (0, 1, 2)), AttributeGroup("parts", "multilabel", (3, 4, 5))))


def _data(attributes: np.ndarray, known: np.ndarray | None = None) -> LabelledData:
    n = len(attributes)
    return LabelledData([f"{i}.jpg" for i in range(n)], np.arange(n) % 3, attributes.astype(np.uint8),
                        np.ones_like(attributes, dtype=bool) if known is None else known)


# --- 1. a task per multilabel group -----------------------------------------------------------------

def test_a_multilabel_group_gets_its_own_task_head_and_loss():
    shared = build_tasks(SCHEMA)
    own = build_tasks(SCHEMA, multilabel_group_tasks=True)
    assert [t.name for t in shared] == ["category", "group/colour", "attributes"]
    assert shared[-1].attribute_indices == (3, 4, 5, 6, 7)
    assert [t.name for t in own] == ["category", "group/colour", "group/parts", "attributes"]
    parts = own[2]
    assert parts.kind == "multilabel" and parts.attribute_indices == (3, 4, 5) and parts.size == 3
    assert own[3].attribute_indices == (6, 7)
    assert tasks_from_config(SCHEMA, load_config(None, ["data.multilabel_group_tasks=true"])["data"]) == own
    assert tasks_from_config(SCHEMA, load_config(None)["data"]) == shared      # the default is unchanged

    # its own head output, its own loss (loss.attribute, here ASL) and its own task weight
    model = create_model(load_config(None, ["model.backbone=test_resnet"])["model"], own)
    logits = model(torch.rand(2, 3, 32, 32))
    assert logits["group/parts"].shape == (2, 3) and logits["attributes"].shape == (2, 2)
    losses = create_task_losses(load_config(None, ["loss.attribute=asl"])["loss"], own)
    assert set(losses) == {"category", "group/colour", "group/parts", "attributes"}
    weighting = TaskWeighting(own, {"group/parts": 0.5, "attributes": 0.25})
    assert weighting.weights() == {"category": 1.0, "group/colour": 0.25, "group/parts": 0.5, "attributes": 0.25}
    with pytest.raises(ConfigError, match="group/parts"):  # without the switch it names no task
        TaskWeighting(shared, {"group/parts": 0.5})
    dwa = create_weighting(load_config(None, ["loss.weighting=dwa"])["loss"], own)
    assert set(dwa.weights()) == {"category", "group/colour", "group/parts", "attributes"}

    # targets: the group's columns; probabilities: the same [N, A] matrix in the same order
    attributes = np.random.default_rng(0).integers(0, 2, (6, 8))
    attributes[:, :3] = np.eye(3, dtype=int)[np.arange(6) % 3]
    targets, masks = encode_targets(_data(attributes), own)
    np.testing.assert_array_equal(targets["group/parts"], attributes[:, 3:6])
    assert masks["group/parts"].shape == (6, 3)
    z = torch.randn(4, 10)
    as_shared = {"category": z[:, :3], "group/colour": z[:, :4], "attributes": z[:, 4:9]}
    as_own = {"category": z[:, :3], "group/colour": z[:, :4], "group/parts": z[:, 4:7], "attributes": z[:, 7:9]}
    a, b = attribute_probabilities(as_shared, shared, 8), attribute_probabilities(as_own, own, 8)
    assert a.shape == b.shape == (4, 8)
    torch.testing.assert_close(a, b)


# --- 2. decay_0.95 task weights -----------------------------------------------------------------------

def test_decay_preset_weights_the_main_task_1_and_each_later_task_095_times_the_one_before():
    cfg = load_config(None, ["loss.task_weights=decay_0.95", "data.multilabel_group_tasks=true"])
    assert cfg["loss"]["task_weights"] == "decay_0.95"
    tasks = build_tasks(SCHEMA, multilabel_group_tasks=True)
    weights = create_weighting(cfg["loss"], tasks).weights()
    assert list(weights) == ["category", "group/colour", "group/parts", "attributes"]
    assert list(weights.values()) == pytest.approx([1.0, 0.95, 0.9025, 0.857375])
    # with DWA the preset is c_k, multiplied by the dynamic factors (1 in the first epochs)
    dwa = create_weighting(load_config(None, ["loss.task_weights=decay_0.95", "loss.weighting=dwa"])["loss"], tasks)
    assert list(dwa.weights().values()) == pytest.approx([1.0, 0.95, 0.9025, 0.857375])


@pytest.mark.parametrize("value", ["decay_0.9", "decay", "3", "[1, 2]"])
def test_a_bad_task_weights_preset_is_a_config_error(value, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"loss.task_weights={value}"])
    message = str(info.value)
    assert "'loss.task_weights' must be a mapping of task name -> weight or one of the presets decay_0.95" in message
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("loss:\n  task_weights: decay_095\n")
    with pytest.raises(ConfigError, match=r"recipe.yaml: 'loss.task_weights' must be .* got 'decay_095'"):
        load_config(recipe)
    with pytest.raises(ConfigError, match="unknown preset 'decay_095'"):  # a config built by hand
        create_weighting({**load_config(None)["loss"], "task_weights": "decay_095"}, build_tasks(SCHEMA))



def test_a_mapping_given_after_a_preset_replaces_it(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("loss:\n  task_weights: decay_0.95\n")
    assert load_config(recipe, ["loss.task_weights.attributes=0"])["loss"]["task_weights"] == {"attributes": 0.0}


# --- 3. early stopping on the validation loss ------------------------------------------------------

def stopped_after(values, epochs, min_delta=0.001):
    """Epochs run by the training loop's rule on a scripted validation-loss curve."""
    stopper, patience, run = plateau_for("train.early_stop_on", "loss", min_delta), patience_for({"epochs": epochs}), 0
    for value in values[:epochs]:
        if stopper.bad_epochs >= patience:
            break
        stopper.update(value)
        run += 1
    return run


def test_early_stopping_on_loss_follows_the_rule_on_a_scripted_curve():
    assert patience_for({"epochs": 30}) == 6 and patience_for({"epochs": 64}) == 9
    # improves to 0.7 at epoch 3, then only changes under 0.001 (up or down): 6 more epochs, then stop
    flat = [1.0, 0.8, 0.7, 0.6995, 0.7004, 0.6992, 0.6999, 0.6991, 0.7, 0.5, 0.4]
    assert stopped_after(flat + [0.3] * 20, 30) == 3 + 6
    # a later drop within the patience resets it: 0.5 at epoch 10 is a change
    assert stopped_after([1.0, 0.8, 0.7] + [0.7] * 5 + [0.5] + [0.5] * 30, 30) == 9 + 6
    # steps under 0.001 that add up: 0.6988 is more than 0.001 below the best (0.7), a change
    creeping = [1.0, 0.8, 0.7, 0.6996, 0.6992, 0.6988] + [0.6988] * 30
    assert stopped_after(creeping, 30) == 6 + 6
    # a longer schedule waits longer: patience int(max(6, 1 + sqrt(64))) = 9
    assert stopped_after([1.0, 0.8, 0.7] + [0.7005] * 70, 64) == 3 + 9
    assert stopped_after([1.0 - 0.01 * k for k in range(30)], 30) == 30  # always improving: every epoch
    # a resumed run replays the logged epochs into the same state
    live = plateau_for("train.early_stop_on", "loss", 0.001)
    for value in creeping[:9]:
        live.update(value)
    resumed = plateau_for("train.early_stop_on", "loss", 0.001)
    resumed.replay([{"val/loss": v, "val/score": 0.0} for v in creeping[:9]])
    assert (resumed.best, resumed.bad_epochs) == (live.best, live.bad_epochs) == (0.6988, 3)
    with pytest.raises(ConfigError, match="train.early_stop_on must be one of score, loss, got 'val_loss'"):
        plateau_for("train.early_stop_on", "val_loss", 0.001)


def test_training_stops_on_the_validation_loss_and_keeps_the_best_score(tiny_dataset, tmp_path, monkeypatch):
    script = iter([2.0, 1.5, 1.4995, 1.4991, 1.4999, 1.4993, 1.4992, 1.4998] + [0.1] * 10)
    monkeypatch.setattr(train_module, "validation_loss", lambda *a, **k: next(script))
    run = init_run(tmp_path / "run", tiny_dataset, None,
                   TINY + ["train.epochs=12", "train.early_stop_on=loss", "train.checkpoint_on=score"])
    stage_split(run)
    stage_train(run, folds_to_train=[0], progress=False)
    metrics = pd.read_csv(run.fold_dir(0) / "metrics.csv")
    # improved at epochs 1 and 2, then patience int(max(6, 1 + sqrt(12))) = 6 epochs without a change
    assert len(metrics) == 2 + 6
    assert list(metrics["val/loss"]) == pytest.approx([2.0, 1.5, 1.4995, 1.4991, 1.4999, 1.4993, 1.4992, 1.4998])
    done = json.loads((run.fold_dir(0) / "done.json").read_text())
    assert done["epochs_run"] == 8 and done["best_epoch"] == int(metrics["val/score"].idxmax()) + 1


def test_the_validation_loss_is_the_task_losses_on_the_held_out_rows(tiny_dataset, tmp_path):
    run = init_run(tmp_path / "run", tiny_dataset, None, TINY + ["loss.task_weights.attributes=0.5"])
    cfg = run.config
    data = run.train_data()
    images, _ = run.images(data.file_paths)
    val = np.arange(0, len(data), 3)
    inputs = train_module.FoldInputs(images, data, run.schema, run.tasks, np.arange(len(data)), val)
    model = create_model({**cfg["model"], "checkpoint": None}, run.tasks)
    targets, masks = encode_targets(data, run.tasks)
    opt = train_module.create_optimisation(cfg, model, run.tasks, {}, 1, torch.device("cpu"), None)
    got = train_module.validation_loss(model, opt, inputs, targets, masks, batch_size=7)  # batches of 7 rows
    x = to_model_input(torch.from_numpy(np.asarray(images[val])).permute(0, 3, 1, 2), torch.device("cpu"), False)
    with torch.no_grad():
        logits = model.eval()(x)
    expected = sum((0.5 if name != "category" else 1.0)
                   * float(fn(logits[name], torch.from_numpy(targets[name][val]), torch.from_numpy(masks[name][val])))
                   for name, fn in opt.task_losses.items())
    assert got == pytest.approx(expected, rel=1e-4)


# --- 4. rare labels merged into "other" ------------------------------------------------------------

def test_rare_members_merge_into_other_within_their_task():
    rare = Schema(SCHEMA.categories, SCHEMA.attributes, SCHEMA.groups, merged=(2, 4, 5, 7))
    tasks = {t.name: t for t in build_tasks(rare, multilabel_group_tasks=True)}
    # a multiclass group folds them into "none"; a sigmoid task gets one "other" output
    assert tasks["group/colour"].attribute_indices == (0, 1) and tasks["group/colour"].size == 3
    assert tasks["group/parts"].attribute_indices == (3,) and tasks["group/parts"].size == 2
    assert tasks["attributes"].attribute_indices == (6,) and tasks["attributes"].size == 2
    attributes = np.array([[0, 0, 1, 0, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0, 1, 1], [0, 1, 0, 0, 0, 1, 0, 0]])
    known = np.ones_like(attributes, dtype=bool)
    known[0, 3:6] = False                     # parts unknown on row 0 ...
    known[0, 4] = True                        # ... except its positive rare member
    known[2, 3:6] = False                     # parts unknown on row 2, where a rare member is positive
    known[2, 5] = True
    known[1, 7] = False                       # row 1: its positive rare ungrouped attribute counts anyway
    targets, masks = encode_targets(_data(attributes, known | attributes.astype(bool)), list(tasks.values()))
    np.testing.assert_array_equal(targets["group/colour"], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])  # rare -> none
    np.testing.assert_array_equal(targets["group/parts"], [[0, 1], [1, 0], [0, 1]])            # [member, other]
    np.testing.assert_array_equal(masks["group/parts"], [[False, True], [True, True], [False, True]])
    np.testing.assert_array_equal(targets["attributes"], [[0, 0], [1, 1], [0, 0]])
    z = torch.randn(3, 2)
    probs = attribute_probabilities({"category": torch.randn(3, 3), "group/colour": torch.randn(3, 3),
                                     "group/parts": z, "attributes": z}, list(tasks.values()), 8)
    assert probs.shape == (3, 8) and (probs[:, [2, 4, 5, 7]] == 0).all()                     # never predicted
    torch.testing.assert_close(probs[:, 3], z[:, 0].sigmoid())                                # "other" dropped


def test_rare_labels_are_merged_and_never_written_to_a_submission(tiny_dataset, tmp_path, capsys):
    """A tiny run end to end with every new option of a sigmoid task on: rare labels merged, the
    multilabel group 'parts' a task of its own, DWA per attribute, early stopping and checkpoints on
    the validation loss, random-crop augmentation."""
    options = ["data.merge_rare_below=0.12", "data.multilabel_group_tasks=true", "loss.weighting=dwa_attribute",
               "train.early_stop_on=loss", "train.checkpoint_on=loss", "augment.preset=random_crop",
               "thresholds.at_least_one=true"]
    run = init_run(tmp_path / "run", tiny_dataset, None, TINY + ["train.epochs=2"] + options)
    out = capsys.readouterr().out
    names = run.schema.attributes
    merged = [names.index(n) for n in ("grey", "red", "green", "yellow", "checked", "collar", "buttons")]
    assert list(run.schema.merged) == merged
    assert "rare labels: 7 attribute(s) under 12% of the training images merged into 'other'" in out
    assert "they are never predicted: grey (7.29%)" in out
    assert Schema.load(run.dir / "schema.json").merged == run.schema.merged            # recorded for every stage
    parts = next(t for t in run.tasks if t.name == "group/parts")
    assert parts.has_other and parts.merged == (names.index("collar"), names.index("buttons"))
    stage_split(run)
    stage_train(run, progress=False)
    metrics = pd.read_csv(run.fold_dir(0) / "metrics.csv")
    assert metrics["val/loss"].notna().all() and "weight/group/parts" in metrics
    stage_oof(run)
    capsys.readouterr()
    report = stage_thresholds(run)
    assert "7 rare attribute(s) merged into 'other' for training are never predicted" in capsys.readouterr().out
    assert not set(report["unlearned"]) & set(merged)  # never predicted by design, not "not learned"
    stage_predict(run)
    capsys.readouterr()
    out_dir = make_submission(Run(run.dir), tmp_path / "subs")
    assert "7 rare attribute(s) merged into 'other' for training are never predicted: grey, red" \
        in capsys.readouterr().out
    probs = np.load(run.dir / "test_probs.npz")
    assert probs["attributes"].shape == (len(read_test(tiny_dataset)), len(names))
    assert (probs["attributes"][:, merged] == 0).all()
    written = pd.read_csv(out_dir / "attribute.csv", dtype=str, keep_default_na=False)["attribute_label"]
    indices = {int(t) for text in written for t in text.split()}
    assert indices and not indices & set(merged) and max(indices) < len(names)
    # the report says so too
    assert "merged into one \"other\" label per task" in section_label_decisions(load_context(run.dir))


def test_merging_off_or_above_every_frequency_changes_nothing(tiny_dataset, tmp_path):
    off = init_run(tmp_path / "off", tiny_dataset, None, TINY)
    assert off.schema.merged == () and "merged_rare" not in (off.dir / "schema.json").read_text()
    with pytest.raises(ConfigError, match="'data.merge_rare_below' must be at least 0 and at most 0.5, got 0.6"):
        load_config(None, ["data.merge_rare_below=0.6"])


# --- 5. DWA per attribute ---------------------------------------------------------------------------

def test_dwa_per_attribute_weights_each_attribute_by_the_formula():
    tasks = build_tasks(SCHEMA)  # category, group/colour (1 unit each), attributes: 5 sigmoid outputs
    dwa = create_weighting(load_config(None, ["loss.weighting=dwa_attribute", "loss.dwa_temperature=2.0",
                                              "loss.task_weights.attributes=0.5"])["loss"], tasks)
    assert isinstance(dwa, AttributeDynamicWeightAverage) and dwa.reduction == "per_output"
    assert dwa.loss_sizes() == {"category": 1, "group/colour": 1, "attributes": 5}
    epochs = [{"category": [2.0], "group/colour": [1.0], "attributes": [0.8, 0.6, 0.4, 0.5, 0.9]},
              {"category": [1.0], "group/colour": [0.9], "attributes": [0.8, 0.3, 0.4, 0.1, 0.95]}]
    for losses in epochs:
        assert all(w == 1.0 for ws in dwa.unit_weights().values() for w in ws)  # the first two epochs
        dwa.end_epoch({k: sum(v) / len(v) for k, v in losses.items()}, losses)
    before = [v for k in epochs[0] for v in epochs[0][k]]
    last = [v for k in epochs[1] for v in epochs[1][k]]
    e = [math.exp(l / b / 2.0) for b, l in zip(before, last)]
    expected = [7 * x / sum(e) for x in e]  # U = 7 units
    got = [w for ws in dwa.unit_weights().values() for w in ws]
    assert got == pytest.approx(expected)
    assert max(got) == got[-1] and min(got) == got[5]  # slowest-falling attribute weighs most, fastest least
    # the loss: c_k (attributes: 0.5, covering group/colour too) times each task's mean over its
    # outputs of w_u L_u
    step = {"category": torch.tensor([1.0]), "group/colour": torch.tensor([2.0]),
            "attributes": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])}
    total = (expected[0] * 1.0 + 0.5 * expected[1] * 2.0
             + 0.5 * sum(w * l for w, l in zip(expected[2:], [1, 2, 3, 4, 5])) / 5)
    assert dwa(step).item() == pytest.approx(total, rel=1e-5)
    assert dwa.weights()["attributes"] == pytest.approx(0.5 * sum(expected[2:]) / 5)
    resumed = create_weighting(load_config(None, ["loss.weighting=dwa_attribute"])["loss"], tasks)
    resumed.load_state_dict(dwa.state_dict())
    assert [w for ws in resumed.unit_weights().values() for w in ws] == pytest.approx(expected)


def test_per_output_losses_are_each_attributes_masked_mean():
    tasks = build_tasks(SCHEMA)
    losses = create_task_losses(load_config(None)["loss"], tasks, reduction="per_output")
    logits, target = torch.randn(4, 5), torch.randint(0, 2, (4, 5)).float()
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[0, 1] = mask[2, 1] = False
    per = losses["attributes"](logits, target, mask)
    entries = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert per.shape == (5,)
    torch.testing.assert_close(per[1], entries[[1, 3], 1].mean())
    torch.testing.assert_close(per[0], entries[:, 0].mean())
    assert losses["category"](torch.randn(4, 3), torch.eye(3)[[0, 1, 2, 0]], torch.ones(4, dtype=torch.bool)).shape == (1,)


# --- 6. augmentation presets ------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(AUGMENT_PRESETS))
def test_each_augmentation_preset_builds_and_transforms_an_image(preset):
    aug = load_config(None, [f"augment.preset={preset}", "augment.brightness_contrast=0"])["augment"]
    transform = create_train_transform(aug, seed=0, image_size=32)
    names = [type(t).__name__ for t in transform.transforms]
    assert not any("Hue" in n or "Color" in n or "Saturation" in n for n in names)  # colour is a label
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    outs = [transform(image=image)["image"] for _ in range(4)]
    assert all(o.shape == (32, 32, 3) and o.dtype == np.uint8 for o in outs)
    if preset != "default":  # every image gets a random geometric transform
        assert all(not np.array_equal(o, image) for o in outs)


def test_report_and_random_crop_presets_are_the_sources_parameters():
    report = create_train_transform(load_config(None, ["augment.preset=report"])["augment"], seed=0, image_size=32)
    flip, affine = report.transforms[:2]
    assert type(flip).__name__ == "HorizontalFlip" and flip.p == 0.5
    assert type(affine).__name__ == "Affine" and affine.p == 1.0
    assert tuple(affine.rotate) == (-45, 45)
    assert tuple(affine.translate_percent["x"]) == (-0.25, 0.25) and tuple(affine.translate_percent["y"]) == (-0.25, 0.25)
    assert tuple(affine.scale["x"]) == (0.8, 1.2) and tuple(affine.scale["y"]) == (0.8, 1.2)
    crop = create_train_transform(load_config(None, ["augment.preset=random_crop", "augment.crop_min_area=0.3"]
                                              )["augment"], seed=0, image_size=32)
    flip, resized = crop.transforms[:2]
    assert type(flip).__name__ == "HorizontalFlip" and type(resized).__name__ == "RandomResizedCrop"
    assert tuple(resized.size) == (32, 32) and tuple(resized.scale) == (0.3, 1.0)
    with pytest.raises(ConfigError, match="augment.preset must be one of default, report, random_crop, got 'keras'"):
        create_train_transform(load_config(None, ["augment.preset=keras"])["augment"])


def test_the_best_epoch_is_the_one_whose_checkpoint_was_kept():
    """An epoch within min_delta of the best is no improvement: best.pt stays the earlier epoch,
    and done.json's best row must name that epoch, not the numerically larger later one."""
    from fashioncomp.training.early_stopping import plateau_for

    history = [{"epoch": e + 1, "val/score": s} for e, s in enumerate([0.5, 0.6, 0.6005, 0.59])]
    keeper = plateau_for("train.checkpoint_on", "score", 0.001)
    assert [keeper.update(row["val/score"]) for row in history] == [True, True, False, False]
    assert keeper.best_row(history)["epoch"] == 2
    loss_keeper = plateau_for("train.checkpoint_on", "loss", 0.001)
    losses = [{"epoch": e + 1, "val/loss": v} for e, v in enumerate([2.0, 1.5, 1.4995, 1.6])]
    loss_keeper.replay(losses)
    assert loss_keeper.best_row(losses)["epoch"] == 2 and loss_keeper.bad_epochs == 2
