"""Regularisation: MixUp / CutMix on multi-task targets, and EMA weights used for validation."""
import numpy as np
import pytest
import torch

from fashioncomp.config import load_config
from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.data.schema import AttributeGroup, Schema
from fashioncomp.models import create_model
from fashioncomp.tasks import build_tasks, encode_targets
from fashioncomp.training.checkpoint import load_checkpoint
from fashioncomp.training.mixing import mix_batch, mix_targets
from fashioncomp.training.train import FoldInputs, evaluate, train_fold

SCHEMA = Schema(tuple(f"c{i}" for i in range(4)), tuple(f"a{i}" for i in range(7)),
                (AttributeGroup("colour", "multiclass", (0, 1, 2)),))
TASKS = build_tasks(SCHEMA)


def labelled(n: int, seed: int = 0) -> LabelledData:
    rng = np.random.default_rng(seed)
    attributes = (rng.random((n, 7)) < 0.4).astype(np.uint8)
    attributes[:, :3] = 0
    colour = rng.integers(0, 4, n)                      # 3 = none of the group
    attributes[colour < 3, colour[colour < 3]] = 1
    known = rng.random((n, 7)) < 0.8
    known[:, :3] = known[:, :1]                        # a group is labelled or not as a whole
    categories = np.where(rng.random(n) < 0.8, rng.integers(0, 4, n), -1)
    return LabelledData([f"{i}.jpg" for i in range(n)], categories, attributes, known | attributes.astype(bool))


def torch_batch(n: int = 8):
    targets, masks = encode_targets(labelled(n), TASKS)
    return ({k: torch.from_numpy(v) for k, v in targets.items()}, {k: torch.from_numpy(v) for k, v in masks.items()})


def check_mixed(targets, masks, mixed, mixed_masks, lam):
    for task in TASKS:
        t, m = targets[task.name], masks[task.name]
        torch.testing.assert_close(mixed[task.name], lam * t + (1 - lam) * t.flip(0))
        assert torch.equal(mixed_masks[task.name], m & m.flip(0))      # labelled only if both rows are
        if task.is_multiclass:                                           # category and group rows
            labelled_rows = mixed_masks[task.name]
            torch.testing.assert_close(mixed[task.name][labelled_rows].sum(1), torch.ones(int(labelled_rows.sum())))


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_mixed_targets_are_the_lambda_mix_and_masks_are_anded(lam):
    targets, masks = torch_batch()
    mixed, both = mix_targets(targets, masks, lam)
    check_mixed(targets, masks, mixed, both, lam)
    assert not torch.equal(both["attributes"], masks["attributes"])  # the AND actually removed entries


def test_mixup_mixes_images_and_targets_with_one_lambda():
    targets, masks = torch_batch()
    images = torch.rand(8, 3, 6, 6)
    cfg = load_config(None, ["train.mixup_alpha=0.4"])["train"]
    out, mixed, both = mix_batch(images, targets, masks, cfg, np.random.default_rng(0))
    # recover lambda from the images: out = lam * x + (1 - lam) * flip(x)
    diff = images - images.flip(0)
    lam = float(((out - images.flip(0)) * diff).sum() / (diff * diff).sum())
    assert 0 < lam < 1
    torch.testing.assert_close(out, lam * images + (1 - lam) * images.flip(0))
    check_mixed(targets, masks, mixed, both, lam)


def test_cutmix_lambda_is_the_kept_area_and_mixes_targets_with_it():
    targets, masks = torch_batch()
    images = torch.rand(8, 3, 16, 16) + torch.arange(8.0).view(8, 1, 1, 1)  # rows differ everywhere
    cfg = load_config(None, ["train.cutmix_alpha=1.0"])["train"]
    for seed in range(5):
        out, mixed, both = mix_batch(images, targets, masks, cfg, np.random.default_rng(seed))
        pasted = (out != images).any(dim=1)[0]              # the box taken from the paired image
        assert torch.equal(out[0][:, pasted], images.flip(0)[0][:, pasted])
        lam = 1.0 - pasted.float().mean().item()
        check_mixed(targets, masks, mixed, both, lam)


def test_mixing_off_or_skipped_leaves_the_batch_alone():
    targets, masks = torch_batch()
    images = torch.rand(8, 3, 4, 4)
    for overrides in ([], ["train.mixup_alpha=0.4", "train.mix_prob=0.0"]):
        cfg = load_config(None, overrides)["train"]
        out, mixed, both = mix_batch(images, targets, masks, cfg, np.random.default_rng(0))
        assert out is images and mixed is targets and both is masks
    cfg = load_config(None, ["train.mixup_alpha=0.4"])["train"]
    single = images[:1]                                     # nothing to pair a lone image with
    out, _, _ = mix_batch(single, {k: v[:1] for k, v in targets.items()}, {k: v[:1] for k, v in masks.items()},
                          cfg, np.random.default_rng(0))
    assert out is single


def test_with_ema_validation_and_best_checkpoint_use_the_ema_weights(tmp_path):
    n = 48
    data = labelled(n, seed=1)
    images = np.random.default_rng(2).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    inputs = FoldInputs(images, data, SCHEMA, TASKS, np.arange(32), np.arange(32, n))
    cfg = load_config(None, ["model.backbone=test_resnet", "train.epochs=1", "train.batch_size=8",
                             "train.ema=true", "train.ema_decay=0.9", "train.warmup_epochs=0",
                             "data.image_size=32", "train.channels_last=false"])
    row = train_fold(cfg, inputs, fold=0, out_dir=tmp_path, device=torch.device("cpu"), progress=False)
    best = load_checkpoint(tmp_path / "best.pt")["model"]
    last = load_checkpoint(tmp_path / "last.pt")
    ema = {k.removeprefix("module."): v for k, v in last["ema"].items()}
    assert best.keys() == last["model"].keys() == ema.keys()
    assert all(torch.equal(best[k], ema[k]) for k in best)               # best.pt holds the EMA weights
    assert any(not torch.equal(best[k], last["model"][k]) for k in best)  # ... which differ from the live ones

    model = create_model(cfg["model"], TASKS)
    model.load_state_dict(best)
    metrics = evaluate(model, inputs, cfg, torch.device("cpu"), None)
    for key, value in metrics.items():                                   # validation scored the EMA model
        assert row[f"val/{key}"] == pytest.approx(value, nan_ok=True), key
