"""Score per CPU-minute: progressive resizing, the CPU's bf16 autocast, and the budget planner with both."""
import pandas as pd
import pytest
import torch

from fashioncomp.budget.planner import Limits, Speeds, Workload, plan_budget
from fashioncomp.pipeline import init_run, stage_split, stage_train
from fashioncomp.training import train as train_module
from fashioncomp.training.progressive import cost_factor, epoch_image_size, resize_batch


def test_progressive_sizes_grow_in_steps_to_the_full_size_and_stay_there():
    sizes = [epoch_image_size(e, 10, 112, 64, 0.5) for e in range(10)]
    assert sizes[0] == 64 and sizes[4:] == [112] * 6
    assert sizes == sorted(sizes) and all(s % 16 == 0 for s in sizes)
    assert len(set(sizes[:4])) >= 3  # a ramp, not a jump
    # off, already at the full size, or a single epoch: always the full size
    assert {epoch_image_size(e, 10, 112, 0, 0.5) for e in range(10)} == {112}
    assert {epoch_image_size(e, 10, 112, 128, 0.5) for e in range(10)} == {112}
    assert epoch_image_size(0, 1, 112, 64, 0.5) == 112
    # the last epoch is always at the full size, whatever the share
    assert all(epoch_image_size(n - 1, n, 96, 48, 1.0) == 96 for n in range(2, 30))


def test_progressive_cost_factor_is_the_mean_pixel_share():
    assert cost_factor(10, 112, 0, 0.5) == 1.0
    sizes = [epoch_image_size(e, 10, 112, 64, 0.5) for e in range(10)]
    assert cost_factor(10, 112, 64, 0.5) == pytest.approx(sum((s / 112) ** 2 for s in sizes) / 10)
    assert 0.6 < cost_factor(10, 112, 64, 0.5) < 0.9


def test_resize_batch_keeps_the_layout_and_only_resizes_when_asked():
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert resize_batch(x, 32) is x
    small = resize_batch(x, 16)
    assert small.shape == (2, 3, 16, 16) and small.is_contiguous(memory_format=torch.channels_last)
    flat = torch.ones(1, 3, 32, 32)
    assert torch.allclose(resize_batch(flat, 16), torch.ones(1, 3, 16, 16))  # antialiased: a flat image stays flat


def _train_fold_0(tiny_dataset, tmp_path, overrides):
    """Fold 0 of a tiny 2-fold run; its run and metrics.csv."""
    run = init_run(tmp_path / "run", tiny_dataset, None, [
        "model.backbone=test_resnet", "split.n_folds=2", "train.batch_size=16", *overrides])
    stage_split(run)
    stage_train(run, [0], progress=False)
    return run, pd.read_csv(run.fold_dir(0) / "metrics.csv")


def test_a_fold_trains_at_the_progressive_sizes_and_validates_at_the_full_one(tiny_dataset, tmp_path):
    _, metrics = _train_fold_0(tiny_dataset, tmp_path, ["data.image_size=48", "train.epochs=4",
                                                        "train.progressive_from=16", "train.progressive_until=0.75"])
    assert list(metrics["image_size"]) == [epoch_image_size(e, 4, 48, 16, 0.75) for e in range(4)] == [16, 32, 48, 48]
    assert metrics["val/category_accuracy"].notna().all()


def test_progressive_resizing_buys_epochs_within_the_same_budget():
    probe, limits = Speeds(100.0, 300.0, 112), Limits(folds=(2,), image_sizes=(112,))
    plain = plan_budget(1200, probe, Workload(3000, 1000, 2, 60.0, refit=True, refit_ratio=2.0), limits)
    ramp = plan_budget(1200, probe, Workload(3000, 1000, 2, 60.0, refit=True, refit_ratio=2.0,
                                             progressive=(64, 0.5)), limits)
    assert ramp.epochs > plain.epochs and ramp.refit_epochs > plain.refit_epochs
    assert sum(ramp.stage_seconds.values()) <= 1200 * limits.safety
    assert ramp.refit_epoch_seconds < 3000 / probe.train_ips  # its mean epoch is cheaper than a full-size one


@pytest.mark.parametrize("native,expected", [(True, torch.bfloat16), (False, None)])
def test_cpu_autocasts_to_bf16_only_where_the_cpu_has_it(monkeypatch, native, expected):
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: native)
    assert train_module.amp_dtype_for(torch.device("cpu"), True) is expected
    assert train_module.amp_dtype_for(torch.device("cpu"), False) is None


def test_a_fold_trains_under_cpu_bf16_autocast(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: True)  # emulated where the CPU lacks it
    run, metrics = _train_fold_0(tiny_dataset, tmp_path, ["data.image_size=32", "train.epochs=2", "train.amp=true",
                                                          "model.colour_bins=4"])
    assert len(metrics) == 2 and metrics["train_loss"].notna().all() and (metrics["train_loss"] > 0).all()
    state = torch.load(run.fold_dir(0) / "best.pt", weights_only=True)["model"]
    assert all(t.dtype in (torch.float32, torch.int64) for t in state.values())  # weights stay fp32
