"""fashioncomp on Kaggle: the pipeline as one self-contained, offline script.

Written by `python -m fashioncomp.kaggle build` (train + predict) or `build-inference` (predict
from uploaded checkpoints); rebuild rather than edit. The fashioncomp package, pipelines/ and the
resolved config travel inside PAYLOAD (a base64 zip). The script

  1. extracts them to a temporary folder and puts it first on the import path of every stage;
  2. checks the Python packages the pipeline needs and installs missing ones from an attached
     wheels dataset (`pip install --no-index --find-links`), never from the network;
  3. finds the competition data (and the weights dataset) under the input root, and runs the
     converter on it first when built with --convert (the data root is then <working>/data);
  4. runs the stages, then copies the submission format's files (Kaggle's submission.csv in a
     code competition) and report.md + report/ (when the run has them) to the working root.

A training kernel built with --folds trains only those folds, after taking the finished folds of
the kernels attached with --kernel-sources (their runs/<name>/); unless that completes the run it
stops there, leaving runs/<name>/ in its output for the next kernel to attach.

Roots, overridable so the script runs anywhere:
    FASHIONCOMP_KAGGLE_INPUT    default /kaggle/input
    FASHIONCOMP_KAGGLE_WORKING  default /kaggle/working

Only the standard library is imported here: the pipeline's own dependencies are checked first.
"""
import base64
import importlib
import json
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SETTINGS: dict = {}  # @build: settings
PAYLOAD = ""  # @build: payload

INPUT_ENV = "FASHIONCOMP_KAGGLE_INPUT"
WORKING_ENV = "FASHIONCOMP_KAGGLE_WORKING"
# albumentations asks PyPI for a newer version when imported; offline that is a warning in every stage
QUIET_ENV = {"NO_ALBUMENTATIONS_UPDATE": "1"}


class KernelError(Exception):
    """A problem with the kernel's inputs or environment, reported as one line."""


def input_root() -> Path:
    return Path(os.environ.get(INPUT_ENV, "/kaggle/input"))


def working_root() -> Path:
    return Path(os.environ.get(WORKING_ENV, "/kaggle/working"))


def find_source(root: Path, ref: str) -> Path:
    """The folder where Kaggle mounted an attached competition ('slug') or dataset ('owner/slug')."""
    owner, _, slug = ref.rpartition("/")
    candidates = [root / slug, root / "competitions" / slug]
    if owner:
        candidates.append(root / "datasets" / owner / slug)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    # mount layouts have changed over the years: accept one unique folder of that name, 3 levels deep at most
    found = []
    for folder, subdirs, _ in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        found += [Path(folder) / d for d in subdirs if d == slug]
        if depth >= 2:
            subdirs.clear()
    if len(found) == 1:
        return found[0]
    attached = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    raise KernelError(
        f"'{ref}' is not attached to this kernel: none of {', '.join(map(str, candidates))} exists"
        + (f" ({len(found)} folders named '{slug}' found)" if found else "")
        + f". Inputs under {root}: {', '.join(attached) or 'none'} (set {INPUT_ENV} to use another input root)"
    )


def competition_root() -> Path:
    """The attached competition data (its --data-subdir), as mounted."""
    return find_source(input_root(), SETTINGS["competition"]) / SETTINGS.get("data_subdir", "")


def require_file(root: Path, needed: str, hint: str) -> Path:
    if not (root / needed).is_file():
        listing = sorted(p.name for p in root.iterdir())[:20] if root.is_dir() else []
        raise KernelError(f"{root / needed}: file not found (the folder holds: {', '.join(listing) or 'nothing'}); {hint}")
    return root


def dataset_root(needed: str, code_dir: Path, env: dict) -> Path:
    """The dataset root the pipeline reads (train.csv, test.csv, images): the competition data, or
    what the converter chosen with --convert made of it in <working>/data."""
    mounted = competition_root()
    convert = SETTINGS.get("convert")
    if not convert:
        return require_file(mounted, needed, "if the competition keeps its files in a subfolder, rebuild with "
                                             "--data-subdir (or convert them with --convert)")
    converted = working_root() / "data"
    run_stage([sys.executable, "-m", "fashioncomp.convert", convert["name"], mounted, converted, *convert["options"]],
              env, code_dir)
    return require_file(converted, needed, f"the converter '{convert['name']}' did not write it: check --convert-options")


def extract_payload(dest: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(PAYLOAD.split())))) as archive:
        archive.extractall(dest)
    return dest


def version_tuple(text: str) -> tuple:
    """Leading numeric release parts: '2.14.1+cu121' -> (2, 14, 1)."""
    match = re.match(r"\d+(\.\d+)*", text.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def missing_requirements(requirements: list) -> list:
    """pip specs ('timm>=1.0') of the required distributions that are absent or too old."""
    missing = []
    for req in requirements:
        try:
            installed = importlib.metadata.version(req["dist"])
        except importlib.metadata.PackageNotFoundError:
            missing.append(req["spec"])
            continue
        if req.get("min") and version_tuple(installed) < version_tuple(req["min"]):
            missing.append(req["spec"])
    return missing


def pip_install_command(specs: list, wheels_dir: Path) -> list:
    return [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels_dir), *specs]


def ensure_requirements() -> None:
    missing = missing_requirements(SETTINGS["requirements"])
    if not missing:
        print("requirements: all present")
        return
    wheels = SETTINGS.get("wheels_dataset")
    if not wheels:
        raise KernelError(
            f"missing Python packages: {', '.join(missing)}. This kernel has no internet: upload their wheels "
            "as a Kaggle dataset and rebuild with --wheels-dataset owner/slug (see docs/kaggle.md)"
        )
    wheels_dir = find_source(input_root(), wheels)
    print(f"requirements: installing {', '.join(missing)} from {wheels_dir} (offline)")
    done = subprocess.run(pip_install_command(missing, wheels_dir))
    importlib.invalidate_caches()
    still = missing_requirements(SETTINGS["requirements"])
    if done.returncode != 0 or still:
        raise KernelError(f"pip could not install {', '.join(still or missing)} from the wheels in {wheels_dir} "
                          "(pip's message is above): add the missing wheels, built for this kernel's Python, to that dataset")


def stage_env(code_dir: Path) -> dict:
    """The environment of every stage: the embedded package first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code_dir)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHON"] = sys.executable  # run_all.sh's interpreter
    env["PYTHONUNBUFFERED"] = "1"
    env.update(QUIET_ENV)
    return env


def check_embedded_import(code_dir: Path, env: dict) -> None:
    """A stage must import the embedded fashioncomp, not some other installed copy."""
    done = subprocess.run([sys.executable, "-c", "import fashioncomp; print(fashioncomp.__file__)"],
                          env=env, cwd=working_root(), capture_output=True, text=True)
    if done.returncode != 0:
        raise KernelError(f"the embedded fashioncomp package does not import: {done.stderr.strip().splitlines()[-1:]}")
    path = Path(done.stdout.strip()).resolve()
    if code_dir.resolve() not in path.parents:
        raise KernelError(f"stages would import fashioncomp from {path}, not from this kernel's copy in {code_dir}")
    print(f"fashioncomp: {path}")


def run_stage(command: list, env: dict, cwd: Path) -> None:
    print("$ " + " ".join(str(part) for part in command), flush=True)
    done = subprocess.run([str(part) for part in command], env=env, cwd=cwd)
    if done.returncode != 0:
        raise KernelError(f"stage failed with exit status {done.returncode}: {' '.join(str(p) for p in command)}")


def fold_sources(run_name: str) -> list:
    """runs/<run_name> in the outputs of the kernels attached with --kernel-sources."""
    found = []
    for ref in SETTINGS.get("kernel_sources", []):
        output = find_source(input_root(), ref)
        if (output / "runs" / run_name).is_dir():
            found.append(output / "runs" / run_name)
        else:
            held = sorted(p.name for p in (output / "runs").iterdir()) if (output / "runs").is_dir() else []
            print(f"kernel source {ref}: no runs/{run_name} in its output {output} (runs there: "
                  f"{', '.join(held) or 'none'}): no folds taken from it")
    return found


def fold_count(run: Path) -> int:
    """The run's folds: its budget plan's count when it has one, else the recipe's split.n_folds."""
    plan = run / "plan.json"
    return int(json.loads(plan.read_text())["folds"]) if plan.is_file() else int(SETTINGS["n_folds"])


def unfinished_folds(run: Path) -> list:
    return [k for k in range(fold_count(run))
            if not ((run / f"fold_{k}" / "done.json").is_file() and (run / f"fold_{k}" / "best.pt").is_file())]


def carry_plan(run: Path, sources: list) -> None:
    """A budgeted run keeps the plan of the kernel that started it: its folds' image size and epochs
    are part of what they were trained from (a new plan here would make them foreign)."""
    if not SETTINGS.get("budget") or (run / "plan.json").is_file():
        return
    for source in sources:
        if (source / "plan.json").is_file():
            shutil.copyfile(source / "plan.json", run / "plan.json")
            print(f"plan: taken from {source}")
            return


def prepare_folds(code_dir: Path, env: dict, data: Path, run: Path, sources: list) -> list:
    """run_all.sh's first stages (init, plan, split), then the attached kernels' finished folds;
    returns the folds left for later kernels (none: this kernel completes the run)."""
    stage = [sys.executable, "-m", "fashioncomp"]
    run_stage([*stage, "init", "--run", run, "--data", data, "--config", code_dir / "config.yaml"], env, code_dir)
    carry_plan(run, sources)
    if SETTINGS.get("budget"):
        run_stage([*stage, "plan", "--run", run], env, code_dir)
    run_stage([*stage, "split", "--run", run], env, code_dir)
    if sources:
        run_stage([sys.executable, "-m", "fashioncomp.kaggle.attached_folds", "--run", run,
                   *[part for source in sources for part in ("--from", source)]], env, code_dir)
    here = SETTINGS.get("folds")
    return [k for k in unfinished_folds(run) if here is not None and k not in here]


def train_and_predict(code_dir: Path, env: dict, runs: Path, submissions: Path) -> tuple:
    """The project's one way, pipelines/run_all.sh, every stage from split to submission; with
    --folds or --kernel-sources, first the folds this kernel trains on top of the attached ones.
    Returns (run directory, whether it reached the submission)."""
    data = dataset_root("train.csv", code_dir, env)
    run = runs / SETTINGS["run_name"]
    sources = fold_sources(run.name)
    here = SETTINGS.get("folds")
    if sources or here is not None:
        later = prepare_folds(code_dir, env, data, run, sources)
        if later:
            run_stage([sys.executable, "-m", "fashioncomp", "train", "--run", run, "--folds", ",".join(map(str, here))],
                      env, code_dir)
            print(f"folds {here} trained here; folds {later} are left: build the next kernel with "
                  f"--kernel-sources {SETTINGS['kernel_id']} (it takes {run.relative_to(working_root())}/ from this "
                  "kernel's output); the kernel that completes the folds writes the submission")
            return run, False
    run_stage(["bash", code_dir / "pipelines" / "run_all.sh", "--data", data, "--config", code_dir / "config.yaml",
               "--name", run.name, "--runs", runs, "--out", submissions], env, code_dir)
    return run, True


def predict_only(code_dir: Path, env: dict, runs: Path, submissions: Path) -> tuple:
    """Checkpoints from the weights dataset -> a run directory here -> predict -> submission."""
    data = dataset_root("test.csv", code_dir, env)
    weights = find_source(input_root(), SETTINGS["weights_dataset"])
    run = runs / SETTINGS["run_name"]
    python = sys.executable
    run_stage([python, "-m", "fashioncomp.kaggle", "attach-weights", "--weights", weights, "--data", data,
               "--run", run], env, code_dir)
    run_stage([python, "-m", "fashioncomp", "predict", "--run", run], env, code_dir)
    run_stage([python, "-m", "fashioncomp.make_submission", "--run", run, "--out", submissions], env, code_dir)
    return run, True


MODES = {"train": train_and_predict, "inference": predict_only}


def collect_outputs(run: Path, submissions: Path, working: Path, submitted: bool) -> None:
    """The submission files (and the report, if any) at the top of the working root, where Kaggle
    shows them and a code competition reads its submission.csv."""
    if submitted:
        for name, target in SETTINGS["submission_outputs"].items():
            shutil.copyfile(submissions / run.name / name, working / target)
        if (run / "report.md").is_file():
            shutil.copyfile(run / "report.md", working / "report.md")
            if (run / "report").is_dir():
                shutil.copytree(run / "report", working / "report", dirs_exist_ok=True)
    # the decoded-image cache is rebuilt on demand; kept here it would be saved as kernel output
    shutil.rmtree(run.parent / ".cache", ignore_errors=True)
    print("outputs: " + ", ".join(sorted(p.name for p in working.iterdir())) + f" in {working}")


def main() -> int:
    working = working_root()
    print(f"fashioncomp kernel '{SETTINGS['title']}' ({SETTINGS['mode']}): input {input_root()}, working {working}")
    code_dir = Path(tempfile.mkdtemp(prefix="fashioncomp-kernel-"))
    try:
        extract_payload(code_dir)
        ensure_requirements()
        working.mkdir(parents=True, exist_ok=True)
        env = stage_env(code_dir)
        check_embedded_import(code_dir, env)
        submissions = working / "submissions"
        run, submitted = MODES[SETTINGS["mode"]](code_dir, env, working / "runs", submissions)
        collect_outputs(run, submissions, working, submitted)
    except KernelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(code_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
