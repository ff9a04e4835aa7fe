"""python -m fashioncomp.kaggle {build,build-inference,push,status,output,submit,attach-weights}
(see --help of each)."""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from fashioncomp.cli import fold_list, run_cli
from fashioncomp.kaggle.loop_commands import LOOP_ACTIONS, add_loop_commands


def _refs(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_kernel_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--competition", required=True, help="competition slug; its data is mounted at <input>/<slug>")
    parser.add_argument("--kernel-id", required=True, help="owner/slug of the kernel on Kaggle")
    parser.add_argument("--dataset-sources", type=_refs, default=[], metavar="OWNER/SLUG,...",
                        help="further datasets to attach (comma-separated)")
    parser.add_argument("--kernel-sources", type=_refs, default=[], metavar="OWNER/SLUG,...",
                        help="kernels whose output to attach (comma-separated); a training kernel takes the finished "
                             "folds of their runs/<name>/ and trains only the missing ones")
    parser.add_argument("--wheels-dataset", metavar="OWNER/SLUG",
                        help="dataset of wheels; missing packages are pip-installed from it offline")
    parser.add_argument("--data-subdir", default="", help="folder inside the competition data holding train.csv/test.csv")
    parser.add_argument("--gpu", action="store_true", help="run the kernel on a GPU")
    parser.add_argument("--public", action="store_true", help="make the kernel public (default: private)")
    parser.add_argument("--out", default=default_out, help=f"kernel folder to write (default: {default_out})")
    _add_data_options(parser)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    """What the kernel does with the competition's data and with its submission."""
    parser.add_argument("--convert", metavar="NAME",
                        help="run `python -m fashioncomp.convert NAME <competition data> <working>/data` first and "
                             "use its output as the dataset (e.g. deepfashion)")
    parser.add_argument("--convert-options", default="", metavar='"..."',
                        help="further arguments of the converter, one quoted string")
    parser.add_argument("--code-competition", action="store_true",
                        help="the kernel is the submission: it writes Kaggle's submission.csv (needs a one-file "
                             "submission.format)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.kaggle",
                                     description="Build and upload fashioncomp Kaggle kernels (docs/kaggle.md).")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="kernel that trains and predicts (the whole pipeline)")
    build.add_argument("--config", required=True, help="recipe YAML (see configs/)")
    build.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.epochs=3 (repeatable)")
    build.add_argument("--name", help="run name inside the kernel (default: the recipe's file name)")
    build.add_argument("--folds", type=fold_list, metavar="0,1",
                       help="train only these folds; the kernel that completes the folds (with those of "
                            "--kernel-sources) makes the submission (default: all)")
    build.add_argument("--budget", metavar="DURATION",
                       help="wall-clock budget of the whole run, e.g. 11h (= --set budget.minutes=...; "
                            "as run_all.sh --budget)")
    _add_kernel_options(build, "build/kaggle")
    infer = sub.add_parser("build-inference", help="weights dataset from a finished run + a kernel that only predicts")
    infer.add_argument("--run", required=True, help="finished run directory, e.g. runs/default")
    infer.add_argument("--dataset-id", required=True, help="owner/slug of the weights dataset to create")
    infer.add_argument("--weights-out", default="build/kaggle-weights", help="dataset folder (default: build/kaggle-weights)")
    _add_kernel_options(infer, "build/kaggle-inference")
    push = sub.add_parser("push", help="upload built folders with the kaggle CLI, in the order given")
    push.add_argument("--path", dest="paths", action="append", metavar="DIR",
                      help="kernel or dataset folder (repeatable; default: build/kaggle)")
    push.add_argument("--version-notes", help="push datasets as a new version of an existing dataset")
    add_loop_commands(sub)  # status, output, submit
    attach = sub.add_parser("attach-weights", help="(inside an inference kernel) weights dataset -> run directory")
    attach.add_argument("--weights", required=True, help="the weights dataset folder")
    attach.add_argument("--data", required=True, help="the competition data root")
    attach.add_argument("--run", required=True, help="run directory to create")
    return parser


def _spec(args: argparse.Namespace) -> Any:
    from fashioncomp.kaggle.build import KernelSpec

    return KernelSpec(competition=args.competition, kernel_id=args.kernel_id, dataset_sources=args.dataset_sources,
                      kernel_sources=args.kernel_sources, wheels_dataset=args.wheels_dataset, gpu=args.gpu,
                      private=not args.public, data_subdir=args.data_subdir, convert=args.convert,
                      convert_options=args.convert_options, code_competition=args.code_competition)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "python -m fashioncomp.kaggle " + shlex.join(argv)

    def action() -> Any:
        if args.command in LOOP_ACTIONS:
            return LOOP_ACTIONS[args.command](args)
        if args.command == "build":
            from fashioncomp.kaggle.build import build_kernel

            return build_kernel(args.config, _spec(args), args.out, args.overrides, args.name, command,
                                folds=args.folds, budget=args.budget)
        if args.command == "build-inference":
            from fashioncomp.kaggle.build import build_inference

            return build_inference(args.run, args.dataset_id, _spec(args), args.weights_out, args.out, command)
        if args.command == "push":
            from fashioncomp.kaggle.push import push

            return push(args.paths or ["build/kaggle"], args.version_notes)
        from fashioncomp.kaggle.weights import attach_weights

        return attach_weights(args.weights, args.data, args.run)

    return run_cli(action)


if __name__ == "__main__":
    raise SystemExit(main())
