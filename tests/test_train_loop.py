"""The training data path: epoch-seeded sampling and augmentation, persistent workers, layout;
which epochs validate (train.validate_last)."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fashioncomp.config import DEFAULTS, load_config
from fashioncomp.data.images import build_image_cache
from fashioncomp.data.torch_dataset import (
    EpochSampler, FileImages, ImageTargetsDataset, create_train_loader, to_model_input,
)
from fashioncomp.data.transforms import create_train_transform
from fashioncomp.inference.predict import read_rows
from fashioncomp.pipeline import init_run, stage_split, stage_train
from fashioncomp.training.checkpoint import load_checkpoint


def _images(n=40, size=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _augmenting_dataset(images, index, dataset_cls=ImageTargetsDataset):
    aug = {**DEFAULTS["augment"], "hflip": 0.5, "shift_scale_rotate": 1.0, "brightness_contrast": 0.5}
    targets = {"category": np.eye(4, dtype=np.float32)[np.arange(len(images)) % 4]}
    masks = {"category": np.ones(len(images), dtype=bool)}
    return dataset_cls(images, index, targets, masks, create_train_transform(aug, seed=1), aug_seed=11)


class _PidDataset(ImageTargetsDataset):
    """Also reports which process loaded each sample."""

    def __getitem__(self, key):
        return {**super().__getitem__(key), "pid": os.getpid()}


def _epochs(loader, n_epochs):
    out = []
    for epoch in range(n_epochs):
        loader.sampler.set_epoch(epoch)
        out.append(list(loader))
    return out


def test_epoch_sampler_seeded_by_epoch_and_sharded_by_rank():
    dataset = list(range(21))
    s0, s1 = EpochSampler(dataset, seed=5, rank=0, world_size=2), EpochSampler(dataset, seed=5, rank=1, world_size=2)
    seen = []
    for epoch in range(2):
        s0.set_epoch(epoch)
        s1.set_epoch(epoch)
        a, b = list(s0), list(s1)
        assert all(e == epoch for _, e in a + b)
        rows0, rows1 = [i for i, _ in a], [i for i, _ in b]
        assert len(rows0) == len(rows1) == len(s0) == 11  # padded to an even split, as DistributedSampler does
        assert set(rows0) | set(rows1) == set(range(21)) and len(set(rows0) & set(rows1)) <= 1
        assert rows0 == [i for i, _ in s0]  # same epoch -> same order
        seen.append(rows0)
    assert seen[0] != seen[1]
    single = EpochSampler(dataset, seed=5)
    assert sorted(i for i, _ in single) == list(range(21))


def test_batches_same_for_any_worker_count_and_workers_persist():
    images = _images()
    index = np.arange(3, 39)
    serial = create_train_loader(_augmenting_dataset(images, index), batch_size=8, num_workers=0, seed=2)
    parallel = create_train_loader(_augmenting_dataset(images, index, _PidDataset), batch_size=8, num_workers=2, seed=2)
    a, b = _epochs(serial, 2), _epochs(parallel, 2)
    assert len(a[0]) == len(b[0]) == 36 // 8  # drop_last
    for epoch_a, epoch_b in zip(a, b):
        for batch_a, batch_b in zip(epoch_a, epoch_b):
            assert batch_a["image"].shape == (8, 24, 24, 3) and batch_a["image"].dtype == torch.uint8
            assert torch.equal(batch_a["row"], batch_b["row"])
            assert torch.equal(batch_a["image"], batch_b["image"])
            assert torch.equal(batch_a["targets"]["category"], batch_b["targets"]["category"])
    # a new permutation and new augmentation each epoch
    assert not torch.equal(a[0][0]["row"], a[1][0]["row"])
    row = int(a[0][0]["row"][0])
    first = [batch["image"][list(batch["row"]).index(row)] for epoch in a for batch in epoch if row in batch["row"]]
    assert len(first) == 2 and not torch.equal(first[0], first[1])
    # the augmentation actually ran: the loaded image is not the stored one
    assert not torch.equal(first[0], torch.from_numpy(images[row]))
    pids = [set(batch["pid"].tolist()) for batch in b[0]], [set(batch["pid"].tolist()) for batch in b[1]]
    workers_epoch0, workers_epoch1 = set().union(*pids[0]), set().union(*pids[1])
    assert os.getpid() not in workers_epoch0 and workers_epoch0 == workers_epoch1  # the same two workers


def test_dataset_pickles_a_memmap_by_path(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, _images(200, 32))
    images = np.load(path, mmap_mode="r")
    dataset = ImageTargetsDataset(images, np.arange(200))
    blob = pickle.dumps(dataset)
    assert len(blob) < 20_000  # the array itself is 600 kB
    again = pickle.loads(blob)
    assert isinstance(again.images, np.memmap)
    assert torch.equal(again[7]["image"], dataset[7]["image"])
    # a view into the memmap is not the whole file: it travels as data
    view = pickle.loads(pickle.dumps(ImageTargetsDataset(images[100:], np.arange(100))))
    assert torch.equal(view[0]["image"], dataset[100]["image"])


def test_to_model_input_normalises_into_channels_last():
    nhwc = torch.from_numpy(_images(4, 16))
    x = to_model_input(nhwc.permute(0, 3, 1, 2), torch.device("cpu"), channels_last=True)
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    expected = (nhwc.permute(0, 3, 1, 2).float() / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) \
        / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected)
    plain = to_model_input(nhwc.permute(0, 3, 1, 2), torch.device("cpu"), channels_last=False)
    assert plain.is_contiguous()
    torch.testing.assert_close(plain, expected)


def test_read_rows_same_from_cache_and_files(tiny_dataset, tmp_path):
    paths = pd.read_csv(tiny_dataset / "train.csv")["file_path"].tolist()[:10]
    cache, _ = build_image_cache(tiny_dataset, paths, 32, tmp_path, progress=False)
    rows = np.array([7, 2, 5])
    from_cache = read_rows(cache, rows)
    assert from_cache.shape == (3, 32, 32, 3) and from_cache.flags.c_contiguous
    np.testing.assert_array_equal(from_cache, read_rows(FileImages(tiny_dataset, paths, 32), rows))


@pytest.fixture
def restore_torch_globals():
    """train_fold sets torch's thread count and deterministic mode for the whole process."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_train_fold_metrics_do_not_depend_on_num_workers(tiny_dataset, tmp_path, restore_torch_globals):
    metrics = []
    for workers in (0, 2):
        run = init_run(tmp_path / f"w{workers}", tiny_dataset, None, [
            "model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=2",
            "train.batch_size=16", "train.deterministic=true", "train.threads=1", f"data.num_workers={workers}",
            "train.mixup_alpha=0.4"])
        stage_split(run)
        stage_train(run, [0], progress=False)
        metrics.append(pd.read_csv(run.fold_dir(0) / "metrics.csv").drop(columns=["seconds"]))
    assert len(metrics[0]) == 2
    pd.testing.assert_frame_equal(metrics[0], metrics[1], check_exact=False, rtol=0, atol=1e-7)


def test_gpu_recipe_is_a_valid_config():
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "gpu.yaml")
    assert cfg["data"]["image_size"] >= 224 and cfg["data"]["num_workers"] == 4
    assert cfg["train"]["amp"] and cfg["model"]["pretrained"] is False
    assert cfg["split"]["n_folds"] == 5 and cfg["predict"]["tta"] == ["none", "hflip"]


TINY_FOLD = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.batch_size=16",
             "train.threads=1"]


def test_validate_last_validates_only_the_last_epochs_and_keeps_best_among_them(tiny_dataset, tmp_path,
                                                                                 restore_torch_globals, capsys):
    run = init_run(tmp_path / "run", tiny_dataset, None, TINY_FOLD + ["train.epochs=4", "train.validate_last=2"])
    stage_split(run)
    stage_train(run, [0], progress=False)
    metrics = pd.read_csv(run.fold_dir(0) / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2, 3, 4]
    assert metrics["val/score"].isna().tolist() == [True, True, False, False]
    done = json.loads((run.fold_dir(0) / "done.json").read_text())
    best = metrics.loc[metrics["val/score"].idxmax()]
    assert done["best_epoch"] == best["epoch"] and done["best"]["val/score"] == pytest.approx(best["val/score"])
    assert load_checkpoint(run.fold_dir(0) / "best.pt")["epoch"] == best["epoch"] - 1
    out = capsys.readouterr().out
    assert out.count("not validated (train.validate_last)") == 2 and out.count("val cat-acc") == 2


def test_a_time_limit_before_the_validated_epochs_still_validates_and_keeps_the_last(tiny_dataset, tmp_path,
                                                                                   restore_torch_globals):
    from fashioncomp.data.group_discovery import read_train_for_recipe
    from fashioncomp.tasks import tasks_from_config
    from fashioncomp.training.train import FoldInputs, train_fold

    cfg = load_config(None, TINY_FOLD + ["train.epochs=4", "train.validate_last=2"])
    data, schema = read_train_for_recipe(tiny_dataset, cfg["data"])
    images, _ = build_image_cache(tiny_dataset, data.file_paths, 32, tmp_path / "cache", progress=False)
    rows = np.arange(len(data))
    inputs = FoldInputs(images, data, schema, tasks_from_config(schema, cfg["data"]), rows[rows % 2 == 0],
                        rows[rows % 2 == 1])
    # one epoch fits in the limit, the second would not: the fold stops before its validated epochs
    row = train_fold(cfg, inputs, 0, tmp_path / "fold", torch.device("cpu"), progress=False, time_limit=1e-6)
    assert row["epoch"] == 1 and 0 <= row["val/score"] <= 1
    metrics = pd.read_csv(tmp_path / "fold" / "metrics.csv")
    assert len(metrics) == 1 and metrics["val/score"].notna().all()
    assert load_checkpoint(tmp_path / "fold" / "best.pt")["metrics"]["score"] == pytest.approx(row["val/score"])


class FakeClock:
    """time.time() for train_fold, read once before the epochs and once at the end of each: every
    epoch lasts `epoch_seconds`; `stop_at` interrupts epoch N (before it is logged)."""

    def __init__(self, epoch_seconds: float, stop_at: int | None = None):
        self.now, self.calls, self.epoch_seconds, self.stop_at = 0.0, 0, epoch_seconds, stop_at

    def time(self) -> float:
        self.calls += 1
        if self.calls > 1:  # an epoch ends
            if self.stop_at is not None and self.calls - 1 == self.stop_at:
                raise KeyboardInterrupt
            self.now += self.epoch_seconds
        return self.now


def test_fill_time_sets_the_epochs_from_the_warm_up_epoch_and_a_resume_keeps_them(tiny_dataset, tmp_path, monkeypatch,
                                                                                   restore_torch_globals):
    import fashioncomp.training.train as train_module
    from fashioncomp.data.group_discovery import read_train_for_recipe
    from fashioncomp.tasks import tasks_from_config
    from fashioncomp.training.train import FoldInputs, train_fold

    cfg = load_config(None, TINY_FOLD + ["train.epochs=2", "train.warmup_epochs=1", "train.lr=0.01",
                                         "train.min_lr_ratio=0.01"])
    data, schema = read_train_for_recipe(tiny_dataset, cfg["data"])
    images, _ = build_image_cache(tiny_dataset, data.file_paths, 32, tmp_path / "cache", progress=False)
    inputs = FoldInputs(images, data, schema, tasks_from_config(schema, cfg["data"]), np.arange(len(data)),
                        np.zeros(0, dtype=np.int64))
    # epochs of 5 s in 32 s: the first guess of 2 becomes 6 (6 x 5 = 30; a 7th would end at 35)
    monkeypatch.setattr(train_module, "time", FakeClock(5.0))
    row = train_fold(cfg, inputs, 0, tmp_path / "whole", torch.device("cpu"), progress=False, time_limit=32.0,
                     fill_time=True)
    whole = pd.read_csv(tmp_path / "whole" / "metrics.csv")
    assert row["epoch"] == 6 and len(whole) == 6
    assert whole["lr"].iloc[-1] < 0.01 * 0.05  # the cosine was stretched to end with the 6th epoch
    # killed at the start of epoch 4, then resumed: the re-planned count comes back with the schedule
    monkeypatch.setattr(train_module, "time", FakeClock(5.0, stop_at=4))
    with pytest.raises(KeyboardInterrupt):
        train_fold(cfg, inputs, 0, tmp_path / "resumed", torch.device("cpu"), progress=False, time_limit=32.0,
                   fill_time=True)
    monkeypatch.setattr(train_module, "time", FakeClock(5.0))
    assert train_fold(cfg, inputs, 0, tmp_path / "resumed", torch.device("cpu"), progress=False, time_limit=32.0,
                      fill_time=True)["epoch"] == 6
    np.testing.assert_allclose(pd.read_csv(tmp_path / "resumed" / "metrics.csv")["lr"], whole["lr"])
    # without fill_time the first guess stands
    monkeypatch.setattr(train_module, "time", FakeClock(5.0))
    assert train_fold(cfg, inputs, 0, tmp_path / "guess", torch.device("cpu"), progress=False,
                      time_limit=32.0)["epoch"] == 2
