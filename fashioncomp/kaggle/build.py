"""Kernel folders for `kaggle kernels push`: kernel-metadata.json + one self-contained script.

    build            train + predict on the competition data (pipelines/run_all.sh in the kernel)
    build-inference  a weights dataset from a finished run + a kernel that only predicts with it
"""
from __future__ import annotations

import contextlib
import io
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from fashioncomp.config import dump_config, load_config
from fashioncomp.io import write_json, write_text
from fashioncomp.kaggle.bundle import BuildError, join_refs, payload_files, render_script, requirements
from fashioncomp.kaggle.names import check_competition, check_dataset_id, check_kernel_id
from fashioncomp.kaggle.weights import DATASET_METADATA, export_weights
from fashioncomp.submission import CODE_COMPETITION_FILE, submission_files

KERNEL_METADATA = "kernel-metadata.json"


def title_for(ref: str) -> str:
    """Kaggle derives a kernel's or dataset's slug from its title: the title must give back the slug."""
    return ref.rpartition("/")[2].replace("-", " ")


def check_converter(name: str, options: Sequence[str]) -> None:
    """`--convert NAME --convert-options "..."` as `python -m fashioncomp.convert` will parse them in the kernel."""
    from fashioncomp.convert import CONVERTERS
    from fashioncomp.convert.__main__ import build_parser

    if name not in CONVERTERS:
        raise BuildError(f"--convert: unknown converter '{name}'; known: {', '.join(sorted(CONVERTERS))}")
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):  # argparse reports by exiting; its last line says what is wrong
            args = vars(build_parser().parse_args([name, "SRC", "DST", *options]))
    except SystemExit:
        problem = messages.getvalue().strip().splitlines()[-1:] or ["invalid"]
        raise BuildError(f"--convert {name} --convert-options '{shlex.join(options)}': {problem[0]}") from None
    given = {key: value for key, value in args.items() if value is not None and key not in ("converter", "src", "dst", "force")}
    CONVERTERS[name].resolve_options(given)  # a missing or malformed option: one ConvertError


@dataclass
class KernelSpec:
    """Where the kernel lives on Kaggle, what is attached to it and how its data and submission are shaped."""

    competition: str
    kernel_id: str
    dataset_sources: Sequence[str] = ()
    kernel_sources: Sequence[str] = ()
    wheels_dataset: str | None = None
    gpu: bool = False
    private: bool = True
    data_subdir: str = ""
    convert: str | None = None          # converter run on the competition data before the pipeline
    convert_options: str = ""           # its options, one shell-quoted string
    code_competition: bool = False      # the kernel's output is the submission: one submission.csv

    def check(self) -> None:
        check_competition(self.competition, "--competition")
        check_kernel_id(self.kernel_id, "--kernel-id")  # Kaggle's limits, title included
        for ref in self.dataset_sources:
            check_dataset_id(ref, "--dataset-sources")
        for ref in self.kernel_sources:
            check_kernel_id(ref, "--kernel-sources")
        if self.wheels_dataset:
            check_dataset_id(self.wheels_dataset, "--wheels-dataset")
        if Path(self.data_subdir).is_absolute() or ".." in Path(self.data_subdir).parts:
            raise BuildError(f"--data-subdir: '{self.data_subdir}' must be a relative path inside the competition data")
        if self.convert:
            check_converter(self.convert, self.converter_args())
        elif self.convert_options:
            raise BuildError("--convert-options needs --convert NAME")

    def converter_args(self) -> list[str]:
        try:
            return shlex.split(self.convert_options)
        except ValueError as exc:
            raise BuildError(f"--convert-options: {exc} in '{self.convert_options}'") from None

    def submission_outputs(self, config: dict[str, Any]) -> dict[str, str]:
        """File the config's format writes -> its name in the working root (Kaggle's name in a code competition)."""
        files = submission_files(config)
        if not self.code_competition:
            return {name: name for name in files}
        if len(files) != 1:
            raise BuildError(f"--code-competition: Kaggle reads one {CODE_COMPETITION_FILE}, but the submission "
                             f"format writes {len(files)} files ({', '.join(files)}); choose a one-file format with "
                             "--set submission.format=... (see README, Submission formats)")
        return {files[0]: CODE_COMPETITION_FILE}

    @property
    def code_file(self) -> str:
        return self.kernel_id.rpartition("/")[2] + ".py"

    def metadata(self, datasets: Sequence[str] = ()) -> dict[str, Any]:
        """The fields `kaggle kernels push` reads; the kernel runs offline."""
        return {
            "id": self.kernel_id,
            "title": title_for(self.kernel_id),
            "code_file": self.code_file,
            "language": "python",
            "kernel_type": "script",
            "is_private": self.private,
            "enable_gpu": self.gpu,
            "enable_internet": False,
            "dataset_sources": join_refs([*datasets, *self.dataset_sources, self.wheels_dataset]),
            "competition_sources": [self.competition],
            "kernel_sources": join_refs(self.kernel_sources),
        }

    def settings(self, mode: str, run_name: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """What the script needs to know at run time."""
        convert = {"name": self.convert, "options": self.converter_args()} if self.convert else None
        return {"title": title_for(self.kernel_id), "kernel_id": self.kernel_id, "mode": mode,
                "competition": self.competition, "data_subdir": self.data_subdir, "convert": convert,
                "wheels_dataset": self.wheels_dataset, "kernel_sources": list(self.kernel_sources),
                "run_name": run_name, "submission_outputs": self.submission_outputs(config),
                **extra, "requirements": requirements(mode=mode)}


def fresh_output_dir(path: Path | str, marker: str) -> Path:
    """An empty folder; one left by an earlier build (it holds `marker`) is emptied, anything else refused."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        if not (path / marker).is_file():
            raise BuildError(f"{path} is not empty and holds no {marker}: choose another --out / --weights-out")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_kernel(out_dir: Path | str, spec: KernelSpec, settings: dict[str, Any], config_text: str,
                  command: str, datasets: Sequence[str] = (), upload_first: Sequence[Path] = ()) -> Path:
    out = fresh_output_dir(out_dir, KERNEL_METADATA)
    script = render_script(settings, payload_files(config_text), command)
    write_text(out / spec.code_file, script)
    write_json(out / KERNEL_METADATA, spec.metadata(datasets))
    paths = " ".join(f"--path {p}" for p in [*upload_first, out])
    print(f"kernel: {out / spec.code_file} ({len(script) // 1024} KiB) and {out / KERNEL_METADATA}; "
          f"upload with: python -m fashioncomp.kaggle push {paths}")
    return out


def check_folds(folds: Sequence[int], config: dict[str, Any]) -> list[int]:
    """`--folds`: folds the recipe can have (with a budget, the plan picks the count among budget.folds)."""
    planned = config["budget"]["folds"] if config["budget"]["minutes"] is not None else []
    most, key = (max(int(n) for n in planned), "budget.folds") if planned else (int(config["split"]["n_folds"]), "split.n_folds")
    wrong = [k for k in folds if not 0 <= k < most]
    if not folds or wrong:
        raise BuildError(f"--folds: {'fold(s) ' + ', '.join(map(str, wrong)) if wrong else 'no fold'} given; "
                         f"this recipe has folds 0..{most - 1} ({key})")
    return sorted(set(folds))


def build_kernel(config_path: Path | str | None, spec: KernelSpec, out_dir: Path | str = "build/kaggle",
                 overrides: Sequence[str] = (), run_name: str | None = None, command: str = "",
                 folds: Sequence[int] | None = None, budget: str | None = None) -> Path:
    """A kernel that runs the pipeline on the competition data and leaves the submission files.

    `folds`: train only these; the kernel that ends with every fold trained (its own and those
    picked up from `spec.kernel_sources`) goes on to the submission. `budget`: budget.minutes, the
    whole run's wall-clock budget (as run_all.sh --budget)."""
    spec.check()
    if budget is not None:
        overrides = [*overrides, f"budget.minutes={budget}"]
    config = load_config(config_path, overrides)  # validated here, not after the upload
    if config["model"].get("checkpoint"):
        print(f"note: model.checkpoint={config['model']['checkpoint']} must exist inside the kernel: attach it as a "
              "dataset and point the key at /kaggle/input/<slug>/<file> with --set")
    name = run_name or (Path(config_path).stem if config_path else "default")
    settings = spec.settings("train", name, config, folds=None if folds is None else check_folds(folds, config),
                             n_folds=int(config["split"]["n_folds"]), budget=config["budget"]["minutes"])
    return _write_kernel(out_dir, spec, settings, dump_config(config), command)


def build_inference(run_dir: Path | str, dataset_id: str, spec: KernelSpec,
                    weights_out: Path | str = "build/kaggle-weights", out_dir: Path | str = "build/kaggle-inference",
                    command: str = "") -> tuple[Path, Path]:
    """A weights dataset from a finished run, and a kernel that predicts with it (predict + make_submission)."""
    spec.check()
    check_dataset_id(dataset_id, "--dataset-id")
    run_dir = Path(run_dir)
    if (run_dir / "config.yaml").is_file():  # a submission the kernel cannot hand in: refused before any copy
        spec.submission_outputs(load_config(run_dir / "config.yaml"))
    weights = export_weights(run_dir, fresh_output_dir(weights_out, DATASET_METADATA), dataset_id, title_for(dataset_id))
    config = load_config(weights / "config.yaml")
    settings = spec.settings("inference", run_dir.name, config, weights_dataset=dataset_id)
    kernel = _write_kernel(out_dir, spec, settings, (weights / "config.yaml").read_text(), command, [dataset_id],
                           upload_first=[weights])
    return weights, kernel
