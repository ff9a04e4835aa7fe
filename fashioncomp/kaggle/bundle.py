"""What a kernel script carries: the package, pipelines/ and the config as a base64 zip, plus settings.

The script is kernel_script.py with its two `@build:` lines replaced; everything it runs comes
from the zip, so the kernel needs no network and no installed fashioncomp.
"""
from __future__ import annotations

import base64
import configparser
import io
import pprint
import re
import textwrap
import zipfile
from pathlib import Path
from typing import Any, Iterable

import fashioncomp
from fashioncomp.errors import UserError

PACKAGE_DIR = Path(fashioncomp.__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
TEMPLATE = Path(__file__).with_name("kernel_script.py")
SETTINGS_LINE = "SETTINGS: dict = {}  # @build: settings"
PAYLOAD_LINE = 'PAYLOAD = ""  # @build: payload'
# Kaggle's Python image carries torch, pandas, sklearn, ...; these may be absent or too old there
LIKELY_MISSING_ON_KAGGLE = ("timm", "albumentations", "iterative-stratification")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same sources give the same script
# kernel mode -> install_requires it can do without: an inference kernel runs only attach-weights,
# predict and make_submission, which never import the split's stratifier (nor scikit-learn, which
# only the stratifier imports), the training augmentation or the report's plots
# (tests/test_kaggle.py runs them with these blocked and checks that they import all the others)
NOT_IMPORTED_BY_MODE: dict[str, tuple[str, ...]] = {
    "train": (),
    "inference": ("iterative-stratification", "scikit-learn", "albumentations", "matplotlib"),
}


class BuildError(UserError):
    """The kernel or dataset cannot be built from these inputs."""


def requirements(setup_cfg: Path = REPO_ROOT / "setup.cfg", mode: str = "train") -> list[dict[str, str | None]]:
    """install_requires of setup.cfg as {dist, min, spec}, without those a kernel of `mode` never
    imports (NOT_IMPORTED_BY_MODE); the kernel checks only lower bounds.

    Upper caps there pin the builds of the development machines; Kaggle's image may be newer.
    """
    if mode not in NOT_IMPORTED_BY_MODE:
        raise ValueError(f"unknown kernel mode {mode!r}; known: {', '.join(NOT_IMPORTED_BY_MODE)}")
    if not setup_cfg.is_file():
        raise BuildError(f"{setup_cfg}: file not found; build kernels from a fashioncomp checkout (pip install -e .)")
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    out = []
    for line in parser.get("options", "install_requires", fallback="").splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", line)
        if not match:
            continue
        dist, constraints = match.groups()
        lower = re.search(r">=\s*([0-9][0-9.]*)", constraints)
        minimum = lower.group(1) if lower else None
        out.append({"dist": dist, "min": minimum, "spec": f"{dist}>={minimum}" if minimum else dist})
    if not out:
        raise BuildError(f"{setup_cfg}: no [options] install_requires found")
    return [req for req in out if req["dist"] not in NOT_IMPORTED_BY_MODE[mode]]


def payload_files(config_text: str) -> dict[str, bytes]:
    """Archive name -> content: the fashioncomp package, pipelines/ and the resolved config."""
    pipelines = REPO_ROOT / "pipelines"
    if not (pipelines / "run_all.sh").is_file():
        raise BuildError(f"{pipelines / 'run_all.sh'}: file not found; build kernels from a fashioncomp checkout")
    files: dict[str, bytes] = {}
    for base in (PACKAGE_DIR, pipelines):
        for path in sorted(base.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                files[path.relative_to(REPO_ROOT).as_posix()] = path.read_bytes()
    files["config.yaml"] = config_text.encode()
    return files


def encode_payload(files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), content, compress_type=zipfile.ZIP_DEFLATED)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _header(settings: dict[str, Any], command: str) -> str:
    specs = [(r["spec"], r["dist"] in LIKELY_MISSING_ON_KAGGLE) for r in settings["requirements"]]
    wheels = settings.get("wheels_dataset")
    lines = [
        f"fashioncomp Kaggle kernel '{settings['title']}' ({settings['mode']}), built by:",
        f"    {command}",
        "Rebuild instead of editing: the package, pipelines/ and the config are in PAYLOAD below.",
        f"Competition data: {settings['competition']}" + (f" (subfolder {settings['data_subdir']})" if settings.get("data_subdir") else ""),
    ]
    if settings.get("convert"):
        convert = settings["convert"]
        lines.append(f"Converted first: python -m fashioncomp.convert {convert['name']} <data> <working>/data "
                     + " ".join(convert["options"]))
    if settings.get("weights_dataset"):
        lines.append(f"Checkpoints: dataset {settings['weights_dataset']}")
    if settings.get("folds") is not None:
        lines.append(f"Trains folds {', '.join(map(str, settings['folds']))} only; the submission comes from the kernel "
                     "that completes the folds")
    if settings.get("kernel_sources") and settings["mode"] == "train":
        lines.append(f"Finished folds taken from the outputs of: {', '.join(settings['kernel_sources'])}")
    if settings.get("budget"):
        lines.append(f"Budget of the whole run: {settings['budget']} (budget.minutes)")
    lines.append("Submission files: " + ", ".join(settings["submission_outputs"].values()))
    lines += [
        "Python packages needed, checked before anything runs:",
        *textwrap.wrap("often missing from Kaggle's image: " + ", ".join(s for s, missing in specs if missing), 96,
                       initial_indent="    ", subsequent_indent="        ", break_on_hyphens=False),
        *textwrap.wrap("usually there: " + ", ".join(s for s, missing in specs if not missing), 96,
                       initial_indent="    ", subsequent_indent="        ", break_on_hyphens=False),
        (f"Missing or too old ones are pip-installed offline from the attached wheels dataset {wheels}." if wheels else
         "If any is missing or too old the kernel stops and names it: rebuild with --wheels-dataset owner/slug."),
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render_script(settings: dict[str, Any], files: dict[str, bytes], command: str) -> str:
    template = TEMPLATE.read_text()
    for marker in (SETTINGS_LINE, PAYLOAD_LINE):
        if template.count(marker) != 1:
            raise RuntimeError(f"{TEMPLATE}: expected the line '{marker}' exactly once")
    payload = "\n".join(textwrap.wrap(encode_payload(files), 100))
    template = template.replace(SETTINGS_LINE, "SETTINGS: dict = " + pprint.pformat(settings, width=100, sort_dicts=False))
    template = template.replace(PAYLOAD_LINE, f'PAYLOAD = """\n{payload}\n"""')
    return _header(settings, command) + template


def join_refs(refs: Iterable[str | None]) -> list[str]:
    """Unique, non-empty references in their first order."""
    return list(dict.fromkeys(r for r in refs if r))
