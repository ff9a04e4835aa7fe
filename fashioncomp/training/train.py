"""Train one fold: a plain PyTorch loop.

Per epoch: shuffle (seeded by epoch), augment, forward all tasks, combine task losses, step
AdamW and the warm-up + cosine schedule (per step), then validate on the held-out fold, log a
metrics row, keep the best checkpoint and stop early when the score stops improving.

Resuming: `last.pt` is written atomically after every epoch with everything needed to go on
(model, optimizer, scheduler, EMA, weighting, history, RNG state). Every source of randomness is
re-seeded from (seed, fold, epoch) at the start of each epoch, so a run that is killed and
resumed ends, on CPU in deterministic mode, with exactly the metrics of an uninterrupted run.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader
from tqdm import tqdm

from fashioncomp.config import patience_for
from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.data.schema import Schema
from fashioncomp.data.torch_dataset import ImageTargetsDataset, to_model_input
from fashioncomp.data.transforms import create_train_transform
from fashioncomp.inference.predict import predict_probs
from fashioncomp.io import write_csv, write_json
from fashioncomp.losses import create_task_losses
from fashioncomp.losses.weighting import create_weighting
from fashioncomp.metrics import score_all
from fashioncomp.models import create_model
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.tasks import Task, encode_targets
from fashioncomp.training.checkpoint import load_checkpoint, save_checkpoint
from fashioncomp.training.mixing import mix_batch


@dataclass
class FoldInputs:
    """Everything a fold's training needs besides the config."""

    images: Any                 # array-like [N, S, S, 3] uint8 (memmap cache or FileImages)
    data: LabelledData
    schema: Schema
    tasks: list[Task]
    train_index: np.ndarray
    val_index: np.ndarray


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_dtype_for(device: torch.device, enabled: bool) -> torch.dtype | None:
    if not enabled or device.type != "cuda":
        return None  # CPU autocast is slower than fp32 for these convnets
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and normalisation parameters (1-D tensors)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def evaluate(model: torch.nn.Module, inputs: FoldInputs, cfg: dict[str, Any], device: torch.device,
             amp_dtype: torch.dtype | None) -> dict[str, float]:
    """Validation metrics at threshold 0.5 (argmax for multiclass groups)."""
    cat_proba, attr_proba = predict_probs(
        model, inputs.images, inputs.val_index, inputs.tasks, inputs.schema.num_attributes, device,
        tta=("none",), batch_size=cfg["predict"]["batch_size"], channels_last=cfg["train"]["channels_last"],
        amp_dtype=amp_dtype,
    )
    val = inputs.data.subset(inputs.val_index)
    groups = inputs.schema.multiclass_groups if cfg["data"]["use_groups"] else ()
    attr_pred = decode_attributes(attr_proba, 0.5, groups)
    return score_all(val.categories, cat_proba, val.attributes, attr_pred, inputs.schema.groups, val.attribute_known)


def train_fold(cfg: dict[str, Any], inputs: FoldInputs, fold: int, out_dir: Path,
               device: torch.device | None = None, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) one fold; write best.pt, last.pt, metrics.csv; return the best row."""
    tcfg = cfg["train"]
    device = device or pick_device()
    amp_dtype = amp_dtype_for(device, tcfg["amp"])
    if tcfg["threads"]:
        torch.set_num_threads(int(tcfg["threads"]))
    if tcfg["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    base_seed = int(cfg["seed"]) + 1000 * fold
    seed_everything(base_seed)

    model = create_model(cfg["model"], inputs.tasks).to(device)
    if tcfg["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if tcfg["compile"] else model

    targets, masks = encode_targets(inputs.data, inputs.tasks)
    transform = create_train_transform(cfg["augment"], seed=base_seed)
    train_set = ImageTargetsDataset(inputs.images, inputs.train_index, targets, masks, transform)
    batch_size = min(tcfg["batch_size"], len(train_set))
    workers = int(cfg["data"]["num_workers"])

    task_losses = create_task_losses(cfg["loss"], inputs.tasks, class_frequencies(targets, masks, inputs.train_index))
    weighting = create_weighting(cfg["loss"], inputs.tasks).to(device)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, tcfg["weight_decay"]) + [{"params": list(weighting.parameters()), "weight_decay": 0.0}],
        lr=tcfg["lr"],
    )
    steps_per_epoch = max(1, len(train_set) // batch_size)
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=tcfg["epochs"] * steps_per_epoch,
        warmup_t=int(tcfg["warmup_epochs"] * steps_per_epoch),
        warmup_lr_init=tcfg["lr"] * 0.01,
        lr_min=tcfg["lr"] * tcfg["min_lr_ratio"],
        t_in_epochs=False,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    ema = ModelEmaV3(model, decay=tcfg["ema_decay"]) if tcfg["ema"] else None

    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    history: list[dict[str, Any]] = []
    start_epoch, best_score, bad_epochs = 0, -math.inf, 0
    if last_path.is_file():
        state = load_checkpoint(last_path, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        weighting.load_state_dict(state["weighting"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        history, best_score, bad_epochs = state["history"], state["best_score"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        print(f"fold {fold}: resuming after epoch {state['epoch'] + 1} (best score {best_score:.4f})")

    patience, min_delta = patience_for(tcfg), tcfg["min_delta"]
    for epoch in range(start_epoch, tcfg["epochs"]):
        if bad_epochs >= patience:
            break
        epoch_seed = base_seed + epoch + 1
        seed_everything(epoch_seed)
        transform.set_random_seed(epoch_seed)
        mix_rng = np.random.default_rng(epoch_seed)
        loader = DataLoader(
            train_set, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
            generator=torch.Generator().manual_seed(epoch_seed), pin_memory=device.type == "cuda",
            persistent_workers=False,
        )
        model.train()
        started = time.time()
        sums: dict[str, float] = {t.name: 0.0 for t in inputs.tasks}
        total_sum, n_steps = 0.0, 0
        bar = tqdm(loader, desc=f"fold {fold} epoch {epoch + 1}/{tcfg['epochs']}", disable=not progress, leave=False)
        for batch in bar:
            x = to_model_input(batch["image"], device, tcfg["channels_last"])
            tgt = {k: v.to(device, non_blocking=True) for k, v in batch["targets"].items()}
            msk = {k: v.to(device, non_blocking=True) for k, v in batch["masks"].items()}
            x, tgt, msk = mix_batch(x, tgt, msk, tcfg, mix_rng)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = forward(x)
            losses = {name: fn(logits[name], tgt[name], msk[name]) for name, fn in task_losses.items()}
            loss = weighting(losses)
            extra = model.head.regularization()
            if extra is not None:
                loss = loss + extra
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tcfg["grad_clip"]:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg["grad_clip"])
            scaler.step(optimizer)
            scaler.update()
            n_steps += 1
            scheduler.step_update(epoch * steps_per_epoch + n_steps)
            if ema is not None:
                ema.update(model, step=epoch * steps_per_epoch + n_steps)
            for name, value in losses.items():
                sums[name] += float(value.detach())
            total_sum += float(loss.detach())
            bar.set_postfix(loss=f"{total_sum / n_steps:.4f}")
        mean_losses = {name: s / max(n_steps, 1) for name, s in sums.items()}
        weights_used = weighting.weights()
        weighting.end_epoch(mean_losses)

        eval_model = ema.module if ema is not None else model
        metrics = evaluate(eval_model, inputs, cfg, device, amp_dtype)
        row = {"epoch": epoch + 1, "train_loss": total_sum / max(n_steps, 1), "lr": optimizer.param_groups[0]["lr"],
               "seconds": round(time.time() - started, 2)}
        row.update({f"loss/{k}": v for k, v in mean_losses.items()})
        row.update({f"weight/{k}": v for k, v in weights_used.items()})
        row.update({f"val/{k}": v for k, v in metrics.items()})
        history.append(row)
        improved = metrics["score"] > best_score + min_delta
        if improved:
            best_score, bad_epochs = metrics["score"], 0
            save_checkpoint(best_path, {"model": eval_model.state_dict(), "epoch": epoch, "metrics": metrics})
        else:
            bad_epochs += 1
        write_csv(out_dir / "metrics.csv", pd.DataFrame(history))
        save_checkpoint(last_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "weighting": weighting.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "epoch": epoch, "history": history, "best_score": best_score, "bad_epochs": bad_epochs,
            "torch_rng": torch.get_rng_state(),
        })
        print(
            f"fold {fold} epoch {epoch + 1}: loss {row['train_loss']:.4f}  "
            f"val cat-acc {metrics['category_accuracy']:.4f}  attr mean-F1 {metrics['attribute_mean_f1']:.4f}  "
            f"score {metrics['score']:.4f}{'  *' if improved else ''}  ({row['seconds']:.0f}s)",
            flush=True,
        )
    best_row = max(history, key=lambda r: r["val/score"])
    write_json(out_dir / "done.json", {"fold": fold, "best_epoch": best_row["epoch"], "best": best_row,
                                       "epochs_run": len(history)})
    return best_row


def class_frequencies(targets: dict[str, np.ndarray], masks: dict[str, np.ndarray],
                      index: np.ndarray) -> dict[str, torch.Tensor]:
    """Per task, the frequency of each class/attribute among the labelled training rows."""
    out = {}
    for name, target in targets.items():
        mask = masks[name][index]
        rows = target[index]
        if mask.ndim == 1:
            counts = rows[mask].sum(axis=0)
            total = max(int(mask.sum()), 1)
        else:
            counts = (rows * mask).sum(axis=0)
            total = np.maximum(mask.sum(axis=0), 1)
        out[name] = torch.as_tensor(counts / total, dtype=torch.float32)
    return out
