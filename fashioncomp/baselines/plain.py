"""python -m fashioncomp.baselines.plain --data DIR --config FILE --epochs N --out DIR

The other reference a recipe must beat: one plain network, the recipe's own, trained on every
training row for N epochs (no folds, no held-out rows, no TTA, no tuned thresholds: 0.5 and the
groups' argmax), then the two submission CSVs for `<DIR>/test.csv` in `--out`. It is what a
competitor writes in an afternoon, so the pipeline has to earn its extra minutes against it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fashioncomp.baselines import baseline_parser, write_baseline_submission
from fashioncomp.cli import run_cli
from fashioncomp.config import load_config
from fashioncomp.data.dataset_reader import read_test
from fashioncomp.data.group_discovery import read_train_for_recipe
from fashioncomp.data.images import build_image_cache
from fashioncomp.inference.predict import predict_probs
from fashioncomp.models import create_model
from fashioncomp.postprocessing.decode import decode_attributes, decode_category
from fashioncomp.tasks import build_tasks
from fashioncomp.training.checkpoint import load_checkpoint
from fashioncomp.training.train import FoldInputs, pick_device, train_fold


def run(data_root: Path, config: Path | None, epochs: int, out_dir: Path, work_dir: Path,
        overrides: list[str] | None = None) -> Path:
    started = time.perf_counter()
    cfg = load_config(config, overrides or [])
    cfg["train"]["epochs"] = epochs
    dcfg = cfg["data"]
    data, schema = read_train_for_recipe(data_root, dcfg)  # the schema the pipeline would use
    tasks = build_tasks(schema, dcfg["use_groups"])
    size = int(dcfg["image_size"])
    images, _ = build_image_cache(data_root, data.file_paths, size, work_dir / ".cache")
    device = pick_device()
    inputs = FoldInputs(images, data, schema, tasks, np.arange(len(data)), np.zeros(0, dtype=np.int64))
    train_fold(cfg, inputs, 0, work_dir / "model", device)
    model = create_model({**cfg["model"], "checkpoint": None}, tasks)
    model.load_state_dict(load_checkpoint(work_dir / "model" / "best.pt", device)["model"])
    model = model.to(device)
    test_paths = read_test(data_root)
    test_images, _ = build_image_cache(data_root, test_paths, size, work_dir / ".cache")
    cat, attr = predict_probs(model, test_images, np.arange(len(test_paths)), tasks, schema.num_attributes, device,
                              tta=("none",), batch_size=cfg["predict"]["batch_size"],
                              channels_last=cfg["train"]["channels_last"], amp_dtype=None)
    groups = schema.multiclass_groups if dcfg["use_groups"] else ()
    return write_baseline_submission(out_dir, data_root, schema, test_paths, decode_category(cat),
                                     decode_attributes(attr, 0.5, groups),
                                     f"plain: {len(data)} training images x {epochs} epochs in "
                                     f"{time.perf_counter() - started:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = baseline_parser("fashioncomp.baselines.plain", __doc__)
    parser.add_argument("--config", type=Path, help="recipe YAML whose network and training to use")
    parser.add_argument("--epochs", required=True, type=int, help="epochs on every training row")
    parser.add_argument("--work", type=Path, default=Path("runs/plain"), help="checkpoints and cache (default runs/plain)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return run_cli(lambda: run(args.data, args.config, args.epochs, args.out, args.work, args.overrides))


if __name__ == "__main__":
    raise SystemExit(main())
