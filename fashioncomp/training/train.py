"""Train one fold: a plain PyTorch loop.

Per epoch: shuffle (seeded by epoch), augment (seeded by epoch and row), forward all tasks,
combine task losses, step AdamW and the warm-up + cosine schedule (per step), then validate on
the held-out fold (every epoch, or only the last `train.validate_last`), log a metrics row, keep
the best checkpoint and stop early when the score (or, with `train.early_stop_on: loss`, the
validation loss) stops changing (early_stopping). The DataLoader and its workers live for the
whole fold.

Across processes (`torchrun`, see fashioncomp.training.distributed) each rank trains on its own
shard of every epoch under DistributedDataParallel; losses are summed over the ranks, rank 0
validates and writes the files, and every rank receives its metrics.

Resuming: `last.pt` is written atomically after every epoch with everything needed to go on
(model, optimizer, scheduler, EMA, weighting, history, RNG state). Every source of randomness is
re-seeded from (seed, fold, epoch) at the start of each epoch, so a run that is killed and
resumed ends, on CPU in deterministic mode, with exactly the metrics of an uninterrupted run.
"""
from __future__ import annotations

import itertools
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from tqdm import tqdm

from fashioncomp.config import patience_for
from fashioncomp.data.dataset_reader import LabelledData
from fashioncomp.data.schema import Schema
from fashioncomp.data.torch_dataset import ImageTargetsDataset, create_train_loader, to_model_input
from fashioncomp.data.transforms import create_train_transform
from fashioncomp.inference.predict import predict_probs, read_rows
from fashioncomp.io import write_csv, write_json
from fashioncomp.losses import create_task_losses
from fashioncomp.losses.weighting import TaskWeighting, create_weighting
from fashioncomp.metrics import ATTRIBUTE_F1, score_all
from fashioncomp.models import create_model
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.tasks import Task, encode_targets
from fashioncomp.training import distributed
from fashioncomp.training.checkpoint import load_checkpoint, save_checkpoint
from fashioncomp.training.early_stopping import plateau_for, validated
from fashioncomp.training.mixing import mix_batch
from fashioncomp.training.progressive import epoch_image_size, progressive_settings, resize_batch

# what training writes in a fold's (or the refit's) directory; --force removes them all
TRAINING_OUTPUTS = ("done.json", "last.pt", "best.pt", "metrics.csv", "budget.json")

# debugging aid: a directory where every rank writes the rows it trained on, per epoch
TRACE_ROWS_ENV = "FASHIONCOMP_TRACE_ROWS"


@dataclass
class FoldInputs:
    """Everything a fold's training needs besides the config."""

    images: Any                 # array-like [N, S, S, 3] uint8 (memmap cache or FileImages)
    data: LabelledData
    schema: Schema
    tasks: list[Task]
    train_index: np.ndarray
    val_index: np.ndarray
    # per-task (targets, masks) over every row of `images`, instead of the labels of `data`
    # (the refit's distilled targets and pseudo-labels)
    targets: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None


@dataclass
class Optimisation:
    """What one training step needs besides the batch."""

    model: torch.nn.Module          # the bare network (its state is what checkpoints hold)
    forward: torch.nn.Module        # what the batch goes through: model, DDP(model) and/or compiled
    task_losses: dict[str, torch.nn.Module]
    weighting: TaskWeighting
    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    scaler: torch.amp.GradScaler
    ema: ModelEmaV3 | None
    device: torch.device
    amp_dtype: torch.dtype | None
    train_cfg: dict[str, Any]
    steps_per_epoch: int


@dataclass
class EpochResult:
    mean_losses: dict[str, float]   # per task, averaged over the steps of every rank
    train_loss: float
    steps: int                      # this rank's optimizer steps
    rows: np.ndarray                # dataset rows this rank trained on, in order
    # per task, each entry of its loss averaged likewise (one entry unless the weighting is per output)
    output_losses: dict[str, list[float]] | None = None


def pick_device() -> torch.device:
    """The GPU if there is one (this rank's own under torchrun), else the CPU."""
    return distributed.current().device()


def amp_dtype_for(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype for `device`, or None for plain fp32.

    CUDA: bf16 where the GPU has it natively, else fp16 (with a GradScaler). CPU: bf16 only on
    CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where oneDNN runs these convnets about
    twice as fast as fp32; elsewhere CPU autocast is slower than fp32, so it stays off.
    """
    if not enabled:
        return None
    if device.type == "cuda":
        # emulated bf16 (e.g. T4, P100) is slow: use fp16 + GradScaler there
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def cpu_has_native_bf16() -> bool:
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu helpers
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


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


def logged_epoch_seconds(fold_dir: Path) -> list[float]:
    """Seconds of every finished epoch of a fold, from its metrics.csv ([] if none)."""
    path = fold_dir / "metrics.csv"
    return [float(s) for s in pd.read_csv(path)["seconds"]] if path.is_file() else []


def first_validated_epoch(epochs: int, validate_last: int | None) -> int:
    """The first epoch (0-based) of `epochs` a fold validates: `train.validate_last` N leaves out all
    but the last N, whose best.pt is all a cosine schedule needs (it keeps improving to the end), and
    saves the held-out pass, about a quarter of a fold epoch on 2 CPU cores."""
    return 0 if validate_last is None else max(0, epochs - int(validate_last))


def steady_epoch_seconds(epoch_seconds: Sequence[float]) -> float:
    """Seconds per epoch at the steady pace: the mean of the epochs after the first, which carries
    the start-up (workers, allocator) and runs up to 10% slow; the first alone if it is all there is."""
    return sum(epoch_seconds[1:]) / (len(epoch_seconds) - 1) if len(epoch_seconds) > 1 else epoch_seconds[0]


def fill_epochs(epoch_seconds: Sequence[float], time_limit: float, first_guess: int,
                current: int | None = None) -> int:
    """The epoch count that fills `time_limit` after the epochs timed in `epoch_seconds` (`fill_time`),
    at the steady pace (`steady_epoch_seconds`).

    At least the epochs done, at most 10x the first guess (against a freak fast epoch). Given the
    `current` count, one epoch more is not worth stretching the schedule for (the count would
    flicker with the noise): it is kept unless fewer fit, or two more do."""
    done, spent = len(epoch_seconds), sum(epoch_seconds)
    left = math.floor((time_limit - spent) / steady_epoch_seconds(epoch_seconds))
    fit = max(done, min(done + left, 10 * first_guess))
    return current if current is not None and current <= fit <= current + 1 else fit


def next_epoch_fits(epoch_seconds: Sequence[float], time_limit: float | None) -> bool:
    """Whether one more epoch, as long as the last one, still ends within `time_limit` seconds."""
    if time_limit is None or not epoch_seconds:
        return True
    return sum(epoch_seconds) + epoch_seconds[-1] <= time_limit


def evaluate(model: torch.nn.Module, inputs: FoldInputs, cfg: dict[str, Any], device: torch.device,
             amp_dtype: torch.dtype | None) -> dict[str, float]:
    """Validation metrics at threshold 0.5 (argmax for multiclass groups); their `score`, which picks
    best.pt, averages category accuracy and the attribute F1 of `metrics.attribute_f1`."""
    cat_proba, attr_proba = predict_probs(
        model, inputs.images, inputs.val_index, inputs.tasks, inputs.schema.num_attributes, device,
        tta=("none",), batch_size=cfg["predict"]["batch_size"], channels_last=cfg["train"]["channels_last"],
        amp_dtype=amp_dtype,
    )
    val = inputs.data.subset(inputs.val_index)
    groups = inputs.schema.multiclass_groups if cfg["data"]["use_groups"] else ()
    attr_pred = decode_attributes(attr_proba, 0.5, groups)
    return score_all(val.categories, cat_proba, val.attributes, attr_pred, inputs.schema.groups, val.attribute_known,
                     cfg["metrics"]["attribute_f1"])


@torch.inference_mode()
def validation_loss(model: torch.nn.Module, opt: "Optimisation", inputs: FoldInputs,
                    targets: dict[str, np.ndarray], masks: dict[str, np.ndarray], batch_size: int) -> float:
    """sum_k c_k L_k over the held-out rows: each task's own training loss on every held-out row
    at once (its masked mean, exactly), weighted by the fixed c_k only (DWA's and uncertainty's
    factors move from epoch to epoch and would move this loss by themselves)."""
    model.eval()
    index = inputs.val_index
    logits: dict[str, list[torch.Tensor]] = {name: [] for name in opt.task_losses}
    for start in range(0, len(index), batch_size):
        rows = index[start:start + batch_size]
        x = to_model_input(torch.from_numpy(read_rows(inputs.images, rows)).permute(0, 3, 1, 2), opt.device,
                           opt.train_cfg["channels_last"])
        with torch.autocast(opt.device.type, dtype=opt.amp_dtype, enabled=opt.amp_dtype is not None):
            out = model(x)
        for name in logits:
            logits[name].append(out[name].float())
    total = 0.0
    for name, fn in opt.task_losses.items():
        target = torch.from_numpy(targets[name][index]).to(opt.device)
        mask = torch.from_numpy(masks[name][index]).to(opt.device)
        total += opt.weighting.base[name] * float(fn(torch.cat(logits[name]), target, mask).mean())
    return total


def create_optimisation(cfg: dict[str, Any], model: torch.nn.Module, tasks: list[Task],
                        class_freq: dict[str, torch.Tensor], steps_per_epoch: int, device: torch.device,
                        amp_dtype: torch.dtype | None) -> Optimisation:
    """Losses, task weighting, AdamW, warm-up + cosine schedule (per step), grad scaler, EMA."""
    tcfg = cfg["train"]
    weighting = create_weighting(cfg["loss"], tasks).to(device)
    # reduced as the weighting combines them: per task, or per output (dwa_attribute)
    task_losses = create_task_losses(cfg["loss"], tasks, class_freq, reduction=weighting.reduction)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, tcfg["weight_decay"]) + [{"params": list(weighting.parameters()), "weight_decay": 0.0}],
        lr=tcfg["lr"],
    )
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=tcfg["epochs"] * steps_per_epoch,
        warmup_t=int(tcfg["warmup_epochs"] * steps_per_epoch),
        warmup_lr_init=tcfg["lr"] * 0.01,
        lr_min=tcfg["lr"] * tcfg["min_lr_ratio"],
        t_in_epochs=False,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    # decay warm-up: a short run has too few steps for a fixed 0.998 to forget the initial weights
    ema = ModelEmaV3(model, decay=tcfg["ema_decay"], use_warmup=True) if tcfg["ema"] else None
    return Optimisation(model, model, task_losses, weighting, optimizer, scheduler, scaler, ema, device, amp_dtype,
                        tcfg, steps_per_epoch)


def train_one_epoch(opt: Optimisation, batches: Iterable[dict[str, Any]], epoch: int,
                    mix_rng: np.random.Generator, image_side: int | None = None) -> EpochResult:
    """One pass over `batches` (dicts with uint8 NHWC "image", "targets", "masks", "row"),
    downscaled to `image_side` if given (progressive resizing)."""
    tcfg, device = opt.train_cfg, opt.device
    names = list(opt.task_losses)
    sizes = opt.weighting.loss_sizes()  # 1 per task, or its outputs' count for a per-output weighting
    bar = batches if isinstance(batches, tqdm) and not batches.disable else None
    opt.forward.train()  # the DDP / compiled wrapper and the model inside it
    # every task's loss entries, then the total, summed on the device: no host sync per step
    sums = torch.zeros(sum(sizes[n] for n in names) + 1, dtype=torch.float64, device=device)
    rows: list[torch.Tensor] = []
    n_steps = 0
    for batch in batches:
        x = to_model_input(batch["image"].permute(0, 3, 1, 2), device, tcfg["channels_last"])
        if image_side is not None:
            x = resize_batch(x, image_side)
        tgt = {k: v.to(device, non_blocking=True) for k, v in batch["targets"].items()}
        msk = {k: v.to(device, non_blocking=True) for k, v in batch["masks"].items()}
        x, tgt, msk = mix_batch(x, tgt, msk, tcfg, mix_rng)
        with torch.autocast(device.type, dtype=opt.amp_dtype, enabled=opt.amp_dtype is not None):
            logits = opt.forward(x)
        losses = {name: fn(logits[name], tgt[name], msk[name]) for name, fn in opt.task_losses.items()}
        loss = opt.weighting(losses)
        extra = opt.model.head.regularization()
        if extra is not None:
            loss = loss + extra
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        # heads that train parts of themselves on a schedule (latent_alternate) drop the rest's gradients
        opt.model.head.schedule_gradients(epoch, epoch * opt.steps_per_epoch + n_steps)
        distributed.average_gradients(opt.weighting.parameters())
        if tcfg["grad_clip"]:
            opt.scaler.unscale_(opt.optimizer)
            torch.nn.utils.clip_grad_norm_(opt.model.parameters(), tcfg["grad_clip"])
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        n_steps += 1
        step = epoch * opt.steps_per_epoch + n_steps
        opt.scheduler.step_update(step)
        if opt.ema is not None:
            opt.ema.update(opt.model, step=step)
        sums += torch.cat([losses[n].detach().float().reshape(-1) for n in names]
                          + [loss.detach().float().reshape(1)]).double()
        rows.append(batch["row"])
        if bar is not None and (n_steps % 10 == 0 or n_steps == len(bar)):
            bar.set_postfix(loss=f"{sums[-1].item() / n_steps:.4f}")
    totals = distributed.sum_across_ranks(sums.tolist() + [n_steps], device)
    all_steps = max(totals[-1], 1)
    output_losses, offset = {}, 0
    for name in names:
        output_losses[name] = [v / all_steps for v in totals[offset:offset + sizes[name]]]
        offset += sizes[name]
    return EpochResult(
        # a task's logged loss: its one entry, or the mean over its outputs
        mean_losses={name: sum(v) / len(v) for name, v in output_losses.items()},
        train_loss=totals[offset] / all_steps, steps=n_steps,
        rows=torch.cat(rows).numpy() if rows else np.zeros(0, dtype=np.int64),
        output_losses=output_losses,
    )


def train_fold(cfg: dict[str, Any], inputs: FoldInputs, fold: int, out_dir: Path,
               device: torch.device | None = None, progress: bool = True,
               time_limit: float | None = None, fill_time: bool = False) -> dict[str, Any]:
    """Train (or resume) one fold; write best.pt, last.pt, metrics.csv; return the best row.

    Under torchrun every rank calls this; `device` is then each rank's own. With `time_limit`
    (seconds of training for this fold, resumed epochs included), no epoch starts that the
    last epoch's duration says would end past it. With `fill_time` too, `train.epochs` is only
    a first guess: once the warm-up epochs are trained, their measured time sets how many epochs
    fill the limit, and the cosine schedule is stretched or shrunk to that count (the warm-up's
    learning rates do not depend on it); the count is set again after each epoch up to the middle
    of the run, as later epochs show the steady pace (`fill_epochs`). A speed probe of a few steps
    can misread a shared machine by 15 %; whole measured epochs do not.
    """
    tcfg = cfg["train"]
    ctx = distributed.setup()
    device = ctx.device() if ctx.enabled else (device or pick_device())
    amp_dtype = amp_dtype_for(device, tcfg["amp"])
    if tcfg["threads"]:
        torch.set_num_threads(int(tcfg["threads"]))
    if tcfg["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    base_seed = int(cfg["seed"]) + 1000 * fold
    seed_everything(base_seed)

    model = create_model(cfg["model"], inputs.tasks, image_size=int(cfg["data"]["image_size"])).to(device)
    if tcfg["channels_last"]:
        model = model.to(memory_format=torch.channels_last)

    targets, masks = inputs.targets or encode_targets(inputs.data, inputs.tasks)
    transform = create_train_transform(cfg["augment"], seed=base_seed, image_size=int(cfg["data"]["image_size"]))
    train_set = ImageTargetsDataset(inputs.images, inputs.train_index, targets, masks, transform, aug_seed=base_seed)
    batch_size = min(tcfg["batch_size"], len(train_set) // ctx.world_size)
    # the permutation of epoch e is seeded by base_seed + e + 1
    loader = create_train_loader(train_set, batch_size, int(cfg["data"]["num_workers"]), seed=base_seed + 1,
                                 rank=ctx.rank, world_size=ctx.world_size, pin_memory=device.type == "cuda")
    steps_per_epoch = max(1, len(loader))

    opt = create_optimisation(cfg, model, inputs.tasks, class_frequencies(targets, masks, inputs.train_index),
                              steps_per_epoch, device, amp_dtype)
    optimizer, weighting, ema = opt.optimizer, opt.weighting, opt.ema

    validate = len(inputs.val_index) > 0
    # what early stopping watches and what best.pt is chosen by (the score, or the validation loss)
    stopper = plateau_for("train.early_stop_on", tcfg["early_stop_on"], tcfg["min_delta"])
    keeper = plateau_for("train.checkpoint_on", tcfg["checkpoint_on"], tcfg["min_delta"])
    needs_val_loss = "loss" in (stopper.name, keeper.name)

    out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if last_path.is_file():
        history, _, _ = load_training_state(last_path, opt)
        start_epoch = len(history)
        if validate:  # both watchers follow from the logged epochs
            stopper.replay(history)
            keeper.replay(history)
        distributed.print_main(f"fold {fold}: resuming after epoch {start_epoch} (best {keeper.name} {keeper.best:.4f})")
    epochs = int(tcfg["epochs"])
    if fill_time and start_epoch:  # the schedule restored from last.pt holds the count re-planned before
        epochs = round(opt.scheduler.t_initial / steps_per_epoch)
    # fill_time: the count is set again after each epoch from the end of the warm-up to the middle of
    # the run (the cosine's learning rate barely moves there; later, the time limit alone guards it)
    replan_from = max(1, math.ceil(float(tcfg["warmup_epochs"]))) if fill_time and time_limit is not None else None

    # wrapped after loading: DDP starts every rank from rank 0's weights
    opt.forward = distributed.wrap_model(model, device)
    opt.forward = torch.compile(opt.forward) if tcfg["compile"] else opt.forward

    patience = patience_for(tcfg)
    first_validated = first_validated_epoch(epochs, tcfg["validate_last"])
    eval_model = ema.module if ema is not None else model  # what validates and becomes best.pt

    def held_out_metrics() -> dict[str, float]:
        metrics = evaluate(eval_model, inputs, cfg, device, amp_dtype) if ctx.is_main else {}
        if needs_val_loss and ctx.is_main:
            metrics["loss"] = validation_loss(eval_model, opt, inputs, targets, masks, cfg["predict"]["batch_size"])
        return distributed.broadcast_from_main(metrics)

    full_side, (start_side, until) = int(cfg["data"]["image_size"]), progressive_settings(tcfg)
    # epoch seconds run back to back, so each includes the files the epoch before it wrote: the
    # time limit and fill_time then see all the fold's time (short epochs make the writes count)
    started = time.time()
    for epoch in itertools.count(start_epoch):
        if epoch >= epochs or stopper.bad_epochs >= patience:
            break
        fits = next_epoch_fits([h["seconds"] for h in history], time_limit)
        if not distributed.broadcast_from_main(fits):  # every rank stops together
            distributed.print_main(f"fold {fold}: stopping after epoch {epoch} of {epochs}: the next epoch "
                                   f"would pass this fold's time budget ({time_limit:.0f}s; best checkpoint kept)")
            break
        epoch_seed = base_seed + epoch + 1
        seed_everything(epoch_seed + 7919 * ctx.rank)  # dropout and mixing differ between ranks
        mix_rng = np.random.default_rng([epoch_seed, ctx.rank])
        loader.sampler.set_epoch(epoch)
        side = epoch_image_size(epoch, epochs, full_side, start_side, until)
        batches = tqdm(loader, desc=f"fold {fold} epoch {epoch + 1}/{epochs}"
                       + (f" at {side}px" if side != full_side else ""),
                       disable=not (progress and ctx.is_main), leave=False)
        result = train_one_epoch(opt, batches, epoch, mix_rng, image_side=side)
        trace_rows(fold, epoch, ctx.rank, result.rows)
        weights_used = weighting.weights()
        weighting.end_epoch(result.mean_losses, result.output_losses)

        validate_now = validate and epoch >= first_validated
        metrics = held_out_metrics() if validate_now else {}
        row = {"epoch": epoch + 1, "train_loss": result.train_loss, "lr": optimizer.param_groups[0]["lr"],
               "image_size": side}
        row.update({f"loss/{k}": v for k, v in result.mean_losses.items()})
        row.update({f"weight/{k}": v for k, v in weights_used.items()})
        row.update({f"val/{k}": v for k, v in metrics.items()})
        history.append(row)
        # without held-out rows (a refit on every row) the model kept is the last epoch's
        improved = not validate or (validate_now and keeper.update(metrics[keeper.name]))
        if validate_now:
            stopper.update(metrics[stopper.name])
        if ctx.is_main and improved and (validate or epoch + 1 == epochs):
            save_checkpoint(best_path, {"model": eval_model.state_dict(), "epoch": epoch, "metrics": metrics})
        ended = time.time()
        row["seconds"] = round(ended - started, 2)  # training, validation and files: what a budget pays
        started = ended
        if replan_from is not None and replan_from <= epoch + 1 <= max(replan_from, epochs // 2):
            timed = distributed.broadcast_from_main([h["seconds"] for h in history])
            first = epoch + 1 == replan_from
            refilled = fill_epochs(timed, time_limit, int(tcfg["epochs"]), None if first else epochs)
            if refilled != epochs or first:
                epochs = refilled
                first_validated = first_validated_epoch(epochs, tcfg["validate_last"])
                opt.scheduler.t_initial = epochs * steps_per_epoch  # saved with the schedule in last.pt
                distributed.print_main(f"fold {fold}: {epochs} epochs fill its {time_limit:.0f}s at the measured "
                                       f"{steady_epoch_seconds(timed):.1f}s per epoch")
        if ctx.is_main:
            write_csv(out_dir / "metrics.csv", pd.DataFrame(history))
            save_training_state(last_path, opt, history, keeper.best, stopper.bad_epochs)
            attribute = ATTRIBUTE_F1[cfg["metrics"]["attribute_f1"]]
            scores = (f"val cat-acc {metrics['category_accuracy']:.4f}  {attribute.label.removeprefix('attribute ')} "
                      f"{metrics[attribute.key]:.4f}  score {metrics['score']:.4f}"
                      + (f"  loss {metrics['loss']:.4f}" if "loss" in metrics else "")
                      + ("  *" if improved else "") if validate_now
                      else "not validated (train.validate_last)" if validate else "no held-out rows")
            print(f"fold {fold} epoch {epoch + 1}: loss {row['train_loss']:.4f}  {scores}  ({row['seconds']:.0f}s)",
                  flush=True)
    if validate and history and not validated(history, keeper.name):
        # the time limit stopped the fold before the epochs train.validate_last validates: keep its last
        metrics = held_out_metrics()
        history[-1].update({f"val/{k}": v for k, v in metrics.items()})
        keeper.update(metrics[keeper.name])
        if ctx.is_main:
            save_checkpoint(best_path, {"model": eval_model.state_dict(), "epoch": len(history) - 1,
                                        "metrics": metrics})
            write_csv(out_dir / "metrics.csv", pd.DataFrame(history))
            save_training_state(last_path, opt, history, keeper.best, stopper.bad_epochs)
    if not validate and not best_path.is_file() and ctx.is_main:  # stopped early by a time limit
        save_checkpoint(best_path, {"model": eval_model.state_dict(),
                                    "epoch": len(history) - 1, "metrics": {}})
    best_row = keeper.best_row(history) if validate else history[-1]
    if ctx.is_main:
        write_json(out_dir / "done.json", {"fold": fold, "best_epoch": best_row["epoch"], "best": best_row,
                                           "epochs_run": len(history), "world_size": ctx.world_size})
    distributed.barrier()  # no rank starts the next fold before rank 0 has written this one
    return best_row


def save_training_state(path: Path, opt: Optimisation, history: list[dict[str, Any]], best_score: float,
                        bad_epochs: int) -> None:
    """Everything needed to go on after epoch len(history) (RNGs are re-seeded per epoch). A resume
    replays `history` into the early-stopping and checkpoint watchers; `best_score` (the
    checkpoint's quantity) and `bad_epochs` are kept for readers of the file."""
    save_checkpoint(path, {
        "model": opt.model.state_dict(), "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(), "weighting": opt.weighting.state_dict(),
        "scaler": opt.scaler.state_dict(), "ema": opt.ema.state_dict() if opt.ema is not None else None,
        "epoch": len(history) - 1, "history": history, "best_score": best_score, "bad_epochs": bad_epochs,
        "torch_rng": torch.get_rng_state(),
    })


def load_training_state(path: Path, opt: Optimisation) -> tuple[list[dict[str, Any]], float, int]:
    """Restore `opt` from `path` (before any DDP wrapping); return (history, best score, bad epochs)."""
    state = load_checkpoint(path, opt.device)
    opt.model.load_state_dict(state["model"])
    opt.optimizer.load_state_dict(state["optimizer"])
    opt.scheduler.load_state_dict(state["scheduler"])
    opt.weighting.load_state_dict(state["weighting"])
    if state.get("scaler"):
        opt.scaler.load_state_dict(state["scaler"])
    if opt.ema is not None and state.get("ema") is not None:
        opt.ema.load_state_dict(state["ema"])
    return state["history"], state["best_score"], state["bad_epochs"]


def trace_rows(fold: int, epoch: int, rank: int, rows: np.ndarray) -> None:
    """With $FASHIONCOMP_TRACE_ROWS set, write the rows this rank trained on (checks sharding)."""
    folder = os.environ.get(TRACE_ROWS_ENV)
    if folder:
        write_json(Path(folder) / f"fold{fold}_epoch{epoch + 1}_rank{rank}.json", rows.tolist())


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
