"""python -m fashioncomp.bench --config configs/cpu.yaml --data DIR [--steps 20] [--rounds 3]

Training and inference throughput (images/s) of:
  (a) the pipeline: decoded-image cache, albumentations, DataLoader, the real training step
      (`train_one_epoch`) and the real inference (`predict_probs` with the recipe's TTA);
  (b) the model step alone on random uint8 batches already in memory: this machine's compute
      limit for the recipe;
  (c) a naive loop that opens and decodes every JPEG with PIL on every access, then the same step.
The modes are measured in interleaved rounds (b, a, c, b, a, c, ...) and the median per mode is
reported, so a background load drifting during the run affects them alike. Ratios a/b (how
close the pipeline runs to the compute limit) and a/c (what the cache buys) close the report.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from PIL import Image

from fashioncomp.cli import run_cli
from fashioncomp.config import load_config
from fashioncomp.data.dataset_reader import read_train
from fashioncomp.data.images import build_image_cache
from fashioncomp.data.torch_dataset import ImageTargetsDataset, create_train_loader
from fashioncomp.data.transforms import create_train_transform
from fashioncomp.inference.predict import predict_probs
from fashioncomp.models import create_model
from fashioncomp.tasks import encode_targets, tasks_from_config
from fashioncomp.training.train import amp_dtype_for, class_frequencies, create_optimisation, pick_device, train_one_epoch


class NaiveJpegImages:
    """The baseline: PIL opens, decodes and resizes the full image on every access."""

    def __init__(self, root: Path, file_paths: list[str], size: int) -> None:
        self.root, self.file_paths, self.size = root, file_paths, size

    def __len__(self) -> int:
        return len(self.file_paths)

    def __getitem__(self, i: int) -> np.ndarray:
        with Image.open(self.root / self.file_paths[int(i)]) as img:
            return np.asarray(img.convert("RGB").resize((self.size, self.size), Image.BILINEAR))


def _timed(fn: Callable[[], int]) -> float:
    started = time.perf_counter()
    n_images = fn()
    return n_images / (time.perf_counter() - started)


def run_benchmark(cfg: dict[str, Any], data_root: Path, cache_dir: Path, steps: int, rounds: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    if cfg["train"]["threads"]:
        torch.set_num_threads(int(cfg["train"]["threads"]))
    data, schema = read_train(data_root, check_images=False)
    tasks = tasks_from_config(schema, cfg["data"])
    size, batch = int(cfg["data"]["image_size"]), int(cfg["train"]["batch_size"])
    n_rows = min(len(data), batch * steps)
    index = np.arange(n_rows)
    device = pick_device()
    amp = amp_dtype_for(device, cfg["train"]["amp"])
    cached, _ = build_image_cache(data_root, data.file_paths, size, cache_dir)
    random_images = np.random.default_rng(0).integers(0, 256, (n_rows, size, size, 3), dtype=np.uint8)
    sources = {"b": random_images, "a": cached, "c": NaiveJpegImages(data_root, data.file_paths, size)}

    targets, masks = encode_targets(data, tasks)
    model = create_model(cfg["model"], tasks, image_size=int(cfg["data"]["image_size"])).to(device)
    if cfg["train"]["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    opt = create_optimisation(cfg, model, tasks, class_frequencies(targets, masks, index), steps, device, amp)
    transform = create_train_transform(cfg["augment"], seed=0, image_size=size)

    def loader_for(images: Any) -> Iterable[dict[str, Any]]:
        dataset = ImageTargetsDataset(images, index, targets, masks, transform, aug_seed=0)
        return create_train_loader(dataset, batch, int(cfg["data"]["num_workers"]), seed=0,
                                   pin_memory=device.type == "cuda")

    # (b) feeds the step from memory: its batches are built once, outside the timing
    in_memory = list(itertools.islice(iter(loader_for(sources["b"])), steps))
    loaders = {"a": loader_for(sources["a"]), "c": loader_for(sources["c"])}

    def train(mode: str) -> int:
        batches = in_memory if mode == "b" else itertools.islice(iter(loaders[mode]), steps)
        result = train_one_epoch(opt, batches, epoch=0, mix_rng=np.random.default_rng(0))
        return result.steps * batch

    def infer(mode: str) -> int:
        predict_probs(model, sources[mode], index, tasks, schema.num_attributes, device,
                      tta=cfg["predict"]["tta"], batch_size=cfg["predict"]["batch_size"],
                      channels_last=cfg["train"]["channels_last"], amp_dtype=amp)
        return n_rows

    train("b")  # warm-up: allocator, kernels, lazy init
    speeds: dict[str, dict[str, list[float]]] = {"train": {m: [] for m in "abc"}, "infer": {m: [] for m in "abc"}}
    for _ in range(rounds):
        for mode in "bac":
            speeds["train"][mode].append(_timed(lambda: train(mode)))
            speeds["infer"][mode].append(_timed(lambda: infer(mode)))
    return {kind: {m: statistics.median(v) for m, v in per_mode.items()} for kind, per_mode in speeds.items()}


def format_report(result: dict[str, dict[str, float]], cfg: dict[str, Any], device: str) -> str:
    names = {"a": "(a) pipeline (cache + augment + loader + step)", "b": "(b) model step alone, data in memory",
             "c": "(c) naive: PIL JPEG decode on every access"}
    lines = [f"backbone {cfg['model']['backbone']} at {cfg['data']['image_size']} px, batch {cfg['train']['batch_size']}, "
             f"TTA {cfg['predict']['tta']}, device {device}, torch threads {torch.get_num_threads()}",
             f"{'mode':48s} {'train img/s':>12s} {'infer img/s':>12s}"]
    for mode in "abc":
        lines.append(f"{names[mode]:48s} {result['train'][mode]:12.1f} {result['infer'][mode]:12.1f}")
    for num, den in (("a", "b"), ("a", "c")):
        lines.append(f"{'ratio ' + num + '/' + den:48s} {result['train'][num] / result['train'][den]:12.3f} "
                     f"{result['infer'][num] / result['infer'][den]:12.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="recipe YAML, e.g. configs/cpu.yaml")
    parser.add_argument("--data", required=True, help="dataset root (train.csv + images)")
    parser.add_argument("--steps", type=int, default=15, help="training steps per measurement (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    parser.add_argument("--cache-dir", default="runs/.cache", help="decoded-image cache (default runs/.cache)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    def action() -> None:
        cfg = load_config(args.config, args.overrides)
        result = run_benchmark(cfg, Path(args.data), Path(args.cache_dir), args.steps, args.rounds)
        print(format_report(result, cfg, str(pick_device())))

    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
