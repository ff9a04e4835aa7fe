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
