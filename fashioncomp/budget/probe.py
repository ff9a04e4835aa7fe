"""Measure this machine's speed for a recipe: a few real training steps and one inference pass.

The probe runs the pipeline's own code (cached images, augmentation, loader, `train_one_epoch`,
`predict_probs`) on the dataset's first rows for a few seconds, after warm-up steps, and
returns images/s at the recipe's image size. Its model is thrown away.

Why 20 measured steps after 2 warm-up steps: on 2 cores the first steps after the warm-up still
run slow (allocator, oneDNN kernel caches), and 6 steps read the 20-minute recipe's speed 5-10 %
low, once 30 % low, which cost the folds epochs the budget had room for. 20 steps (about 20 s
with the inference pass at 112 px) read steadier, but a shared machine still moves them by up to
15 %; from the measured epochs, later folds are re-planned (never upwards) and the refit takes
the time the folds leave (schedule.py).
"""
from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import torch

from fashioncomp.budget.planner import Speeds
from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.data.torch_dataset import ImageTargetsDataset, create_train_loader
from fashioncomp.data.transforms import create_train_transform
from fashioncomp.inference.predict import predict_probs
from fashioncomp.models import create_model
from fashioncomp.tasks import Task, encode_targets
from fashioncomp.training.train import amp_dtype_for, class_frequencies, create_optimisation, pick_device, train_one_epoch


def probe_speeds(cfg: dict[str, Any], images: Any, data: LabelledData, tasks: list[Task], num_attributes: int,
                 steps: int = 20, warmup_steps: int = 2) -> Speeds:
    """Training and one-view inference images/s of the recipe `cfg` on `images` (cached [N, S, S, 3])."""
    torch.manual_seed(0)
    if cfg["train"]["threads"]:
        torch.set_num_threads(int(cfg["train"]["threads"]))
    batch = min(int(cfg["train"]["batch_size"]), len(data))
    index = np.arange(min(len(data), batch * (steps + warmup_steps)))
    device = pick_device()
    amp = amp_dtype_for(device, cfg["train"]["amp"])
    targets, masks = encode_targets(data, tasks)
    model = create_model({**cfg["model"], "checkpoint": None}, tasks, image_size=int(cfg["data"]["image_size"]))
    model = model.to(device)
    if cfg["train"]["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    opt = create_optimisation(cfg, model, tasks, class_frequencies(targets, masks, index), steps + warmup_steps, device,
                              amp)
    transform = create_train_transform(cfg["augment"], seed=0, image_size=int(cfg["data"]["image_size"]))
    dataset = ImageTargetsDataset(images, index, targets, masks, transform, aug_seed=0)
    loader = create_train_loader(dataset, batch, int(cfg["data"]["num_workers"]), seed=0,
                                 pin_memory=device.type == "cuda")
    batches = itertools.chain.from_iterable(itertools.repeat(loader))  # as many passes as the steps need
    rng = np.random.default_rng(0)
    train_one_epoch(opt, itertools.islice(batches, warmup_steps), epoch=0, mix_rng=rng)  # allocator, lazy init
    started = time.perf_counter()
    done = train_one_epoch(opt, itertools.islice(batches, steps), epoch=0, mix_rng=rng).steps * batch
    train_ips = done / (time.perf_counter() - started)
    started = time.perf_counter()
    predict_probs(model, images, index, tasks, num_attributes, device, tta=("none",),
                  batch_size=cfg["predict"]["batch_size"], channels_last=cfg["train"]["channels_last"], amp_dtype=amp)
    infer_ips = len(index) / (time.perf_counter() - started)
    return Speeds(train_ips, infer_ips, int(cfg["data"]["image_size"]))
