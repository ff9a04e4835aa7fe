"""python -m fashioncomp.baselines.plain --data DIR --out DIR (--epochs N | --minutes M) [--config FILE]

The other reference a recipe must beat: one plain network trained on every training row (no
folds, no held-out rows, no TTA, no tuned thresholds: 0.5 and the groups' argmax), then the two
submission CSVs for `<DIR>/test.csv` in `--out`. It is what a competitor writes in an afternoon,
so the pipeline has to earn its extra minutes against it. The network and its training come from
`--config` (default `configs/plain.yaml`: one ResNet-18 at 96 px in plain fp32, the reference
issue 10 measured). `--minutes M` fills M wall minutes: a short probe measures this machine's
training speed for a first epoch count, the first (warm-up) epoch's measured time then sets the
count that fills M (train_fold's `fill_time`), and no epoch starts that would end past M.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from fashioncomp.baselines import baseline_parser, write_baseline_submission
from fashioncomp.budget.probe import probe_speeds
from fashioncomp.cli import run_cli
from fashioncomp.config import load_config
from fashioncomp.data.dataset_reader import read_test
from fashioncomp.data.group_discovery import read_train_for_recipe
from fashioncomp.data.images import build_image_cache
from fashioncomp.inference.predict import predict_probs
from fashioncomp.models import create_model
from fashioncomp.postprocessing.decode import decode_attributes, decode_category
from fashioncomp.tasks import tasks_from_config
from fashioncomp.training.checkpoint import load_checkpoint
from fashioncomp.training.train import FoldInputs, amp_dtype_for, pick_device, train_fold


PLAIN_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "plain.yaml"
SAFETY = 0.95  # share of --minutes planned; the rest absorbs drift


def epochs_for_minutes(minutes: float, elapsed: float, n_train: int, n_test: int, train_ips: float,
                       infer_ips: float) -> tuple[int, float]:
    """(epochs, training seconds) that fill `minutes` after `elapsed` seconds, leaving the test prediction's time."""
    train_seconds = minutes * 60 * SAFETY - elapsed - n_test / infer_ips
    return max(1, math.floor(train_seconds / (n_train / train_ips))), train_seconds


def run(data_root: Path, config: Path | None, epochs: int | None, out_dir: Path, work_dir: Path,
        overrides: list[str] | None = None, minutes: float | None = None) -> Path:
    started = time.perf_counter()
    cfg = load_config(config or PLAIN_CONFIG, overrides or [])
    dcfg = cfg["data"]
    data, schema = read_train_for_recipe(data_root, dcfg)  # the schema the pipeline would use
    tasks = tasks_from_config(schema, dcfg)
    size = int(dcfg["image_size"])
    images, _ = build_image_cache(data_root, data.file_paths, size, work_dir / ".cache")
    test_paths = read_test(data_root)
    test_images, _ = build_image_cache(data_root, test_paths, size, work_dir / ".cache")
    time_limit = None
    if minutes is not None:
        speeds = probe_speeds(cfg, images, data, tasks, schema.num_attributes)
        epochs, time_limit = epochs_for_minutes(minutes, time.perf_counter() - started, len(data), len(test_paths),
                                                speeds.train_ips, speeds.infer_ips)
        print(f"plain: {minutes:g} min at {speeds.train_ips:.0f} training img/s -> {epochs} epochs (first guess)")
    cfg["train"]["epochs"] = epochs
    device = pick_device()
    inputs = FoldInputs(images, data, schema, tasks, np.arange(len(data)), np.zeros(0, dtype=np.int64))
    epochs = train_fold(cfg, inputs, 0, work_dir / "model", device, time_limit=time_limit,
                        fill_time=time_limit is not None)["epoch"]
    model = create_model({**cfg["model"], "checkpoint": None}, tasks, image_size=int(cfg["data"]["image_size"]))
    model.load_state_dict(load_checkpoint(work_dir / "model" / "best.pt", device)["model"])
    model = model.to(device)
    cat, attr = predict_probs(model, test_images, np.arange(len(test_paths)), tasks, schema.num_attributes, device,
                              tta=("none",), batch_size=cfg["predict"]["batch_size"],
                              channels_last=cfg["train"]["channels_last"],
                              amp_dtype=amp_dtype_for(device, cfg["train"]["amp"]))
    groups = schema.multiclass_groups if dcfg["use_groups"] else ()
    return write_baseline_submission(out_dir, data_root, schema, test_paths, decode_category(cat),
                                     decode_attributes(attr, 0.5, groups),
                                     f"plain: {len(data)} training images x {epochs} epochs in "
                                     f"{time.perf_counter() - started:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = baseline_parser("fashioncomp.baselines.plain", __doc__)
    parser.add_argument("--config", type=Path, help="YAML of the network and its training (default configs/plain.yaml)")
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--epochs", type=int, help="epochs on every training row")
    length.add_argument("--minutes", type=float, help="wall minutes to fill (epochs planned from a speed probe)")
    parser.add_argument("--work", type=Path, default=Path("runs/plain"), help="checkpoints and cache (default runs/plain)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return run_cli(lambda: run(args.data, args.config, args.epochs, args.out, args.work, args.overrides,
                                   args.minutes))


if __name__ == "__main__":
    raise SystemExit(main())
