"""Shared fixtures: small synthetic datasets generated once per test session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fashioncomp.synth import generate_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 96-image synthetic dataset in the competition layout (do not modify: shared)."""
    return generate_dataset(tmp_path_factory.mktemp("data") / "tiny", n_train=96, n_test=24, seed=3, image_size=32)


@pytest.fixture(scope="session")
def trained_run_factory(tmp_path_factory: pytest.TempPathFactory):
    """make(name, dataset, overrides): a new run of the default recipe with `overrides`, split and
    every fold trained (for module-scoped fixtures that add stages)."""
    from fashioncomp.pipeline import init_run, stage_split, stage_train

    def make(name: str, dataset: Path, overrides: list[str]):
        run = init_run(tmp_path_factory.mktemp(name) / "run", dataset, None, overrides)
        stage_split(run)
        stage_train(run, progress=False)
        return run

    return make


@pytest.fixture
def dataset_copy(tiny_dataset: Path, tmp_path: Path) -> Path:
    """A private, modifiable copy of the tiny dataset."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "data"))


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine their spinning costs seconds
    (use with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
