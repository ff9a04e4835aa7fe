"""Partial labels end to end: train.csv markers -> task masks -> zero gradient through the whole
model (every head) -> metrics and threshold search that ignore the unknown labels."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fashioncomp.config import load_config
from fashioncomp.data.dataset_reader import read_train
from fashioncomp.losses import create_task_losses
from fashioncomp.losses.weighting import create_weighting
from fashioncomp.metrics import score_all
from fashioncomp.models import create_model
from fashioncomp.models.heads import HEADS
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.postprocessing.thresholds import tune_thresholds
from fashioncomp.tasks import build_tasks, encode_targets
from fashioncomp.training.train import class_frequencies


def partial_dataset(root):
    """Mark labels unknown in the tiny synthetic set: category -1, `?`, `?colour`, `?parts`."""
    frame = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    _, schema = read_train(root)
    groups = {g.name: set(g.indices) for g in schema.groups}
    for i in range(len(frame)):
        tokens = frame.at[i, "attribute_label"].split()
        if i % 4 == 0:
            frame.at[i, "category_label"] = "-1"
        if i % 5 == 1:
            tokens = ["?"]
        elif i % 5 in (2, 3):
            group = "colour" if i % 5 == 2 else "parts"
            tokens = [t for t in tokens if int(t) not in groups[group]] + [f"?{group}"]
        frame.at[i, "attribute_label"] = " ".join(tokens)
    frame.to_csv(root / "train.csv", index=False)
    return read_train(root)


@pytest.fixture(scope="module")
def partial(tiny_dataset, tmp_path_factory):
    return partial_dataset(Path(shutil.copytree(tiny_dataset, tmp_path_factory.mktemp("partial") / "data")))


def test_reader_markers_become_task_masks(partial):
    data, schema = partial
    tasks = build_tasks(schema)
    targets, masks = encode_targets(data, tasks)
    parts = [tasks[-1].attribute_indices.index(j) for j in next(g for g in schema.groups if g.name == "parts").indices]
    assert [t.name for t in tasks] == ["category", "group/colour", "group/pattern", "group/gender", "attributes"]
    assert not masks["category"][0] and masks["category"][1] and (targets["category"][0] == 0).all()
    assert not any(masks[t.name][1].any() for t in tasks[1:])                       # `?`: no attribute known
    assert not masks["group/colour"][2] and masks["group/pattern"][2] and masks["attributes"][2].all()
    assert masks["group/colour"][3] and not masks["attributes"][3][parts].any()     # `?parts`: only those
    assert masks["attributes"][3].sum() == len(tasks[-1].attribute_indices) - len(parts)


def scrambled(targets, masks):
    """Different targets wherever the label is unknown (still valid distributions)."""
    out = {}
    for name, target in targets.items():
        mask = masks[name]
        other = target.roll(1, dims=1) if mask.ndim == 1 else 1 - target
        out[name] = torch.where(mask[:, None] if mask.ndim == 1 else mask, target, other)
    return out


def gradients(model, weighting, losses, images, targets, masks):
    model.zero_grad()
    weighting.zero_grad()
    torch.manual_seed(0)                                  # same dropout masks every call
    logits = model(images)
    total = weighting({name: fn(logits[name], targets[name], masks[name]) for name, fn in losses.items()})
    total.backward()
    params = list(model.named_parameters()) + list(weighting.named_parameters())
    return {name: p.grad.clone() for name, p in params if p.grad is not None}


LOSS_SETS = [
    ["loss.category=ce", "loss.label_smoothing=0.1", "loss.weighting=uncertainty"],
    ["loss.category=focal", "loss.group=weighted_ce", "loss.attribute=asl", "loss.weighting=dwa"],
    ["loss.category=weighted_ce", "loss.group=focal", "loss.attribute=focal"],
    ["loss.attribute=weighted_ce", "loss.task_weights.category=0.5"],
]


# every head once, the loss sets in turn (all heads x all sets would cost a minute of CPU)
@pytest.mark.parametrize("head,loss_set", [(h, LOSS_SETS[i % len(LOSS_SETS)]) for i, h in enumerate(sorted(HEADS))])
def test_unknown_labels_give_zero_gradient_through_the_whole_model(partial, head, loss_set):
    data, schema = partial
    cfg = load_config(None, ["model.backbone=test_resnet", f"model.head={head}", "model.head_hidden=32", *loss_set])
    tasks = build_tasks(schema)
    np_targets, np_masks = encode_targets(data, tasks)
    rows = np.arange(12)
    losses = create_task_losses(cfg["loss"], tasks, class_frequencies(np_targets, np_masks, np.arange(len(data))))
    weighting = create_weighting(cfg["loss"], tasks)
    targets = {k: torch.from_numpy(v[rows]) for k, v in np_targets.items()}
    masks = {k: torch.from_numpy(v[rows]) for k, v in np_masks.items()}
    assert not all(m.all() for m in masks.values())
    torch.manual_seed(0)
    model = create_model(cfg["model"], tasks).train()
    images = torch.randn(len(rows), 3, 32, 32)

    reference = gradients(model, weighting, losses, images, targets, masks)
    unknown_changed = gradients(model, weighting, losses, images, scrambled(targets, masks), masks)
    assert reference.keys() == unknown_changed.keys()
    assert any(name.startswith("backbone.") for name in reference)
    for name, grad in reference.items():
        assert torch.equal(grad, unknown_changed[name]), name

    # control: changing a *known* label does change the backbone's gradient
    nothing_known = {k: torch.zeros_like(m) for k, m in masks.items()}
    known_changed = gradients(model, weighting, losses, images, scrambled(targets, nothing_known), masks)
    assert any(not torch.equal(reference[n], known_changed[n]) for n in reference if n.startswith("backbone."))


def test_metrics_and_threshold_search_ignore_unknown_labels(partial):
    data, schema = partial
    rng = np.random.default_rng(0)
    known = data.attribute_known
    cat_proba = rng.random((len(data), schema.num_categories))
    attr_proba = rng.random(data.attributes.shape)
    attr_pred = decode_attributes(attr_proba, 0.5, schema.multiclass_groups)

    def everything(attr_true, cat_scores, pred, proba):
        scores = score_all(data.categories, cat_scores, attr_true, pred, schema.groups, known)
        tuned = tune_thresholds(attr_true, proba, metric="mcc", min_positives=3, mask=known)
        return scores, tuned.thresholds, tuned.global_threshold

    reference = everything(data.attributes, cat_proba, attr_pred, attr_proba)
    unknown_cat = data.categories == -1
    assert unknown_cat.any() and (~known).any()
    cat_other = np.where(unknown_cat[:, None], rng.random(cat_proba.shape), cat_proba)
    true_other = np.where(known, data.attributes, 1 - data.attributes)
    pred_other = np.where(known, attr_pred, ~attr_pred)
    proba_other = np.where(known, attr_proba, rng.random(attr_proba.shape))
    changed = everything(true_other, cat_other, pred_other, proba_other)
    assert changed[0] == reference[0]
    np.testing.assert_array_equal(changed[1], reference[1])
    assert changed[2] == reference[2]

    # control: scored without the mask, the same changes do move the scores
    unmasked = score_all(data.categories, cat_proba, true_other, pred_other, schema.groups)
    assert unmasked["attribute_mean_f1"] != reference[0]["attribute_mean_f1"]
