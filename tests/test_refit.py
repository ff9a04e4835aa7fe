"""The refit on every training row: trained without held-out rows, blended only into the test prediction."""
import numpy as np
import pandas as pd
import pytest

from fashioncomp.budget.planner import Limits, Speeds, Workload, plan_budget
from fashioncomp.config import ConfigError
from fashioncomp.pipeline import Run, init_run, stage_oof, stage_predict, stage_split, stage_train
from fashioncomp.refit import stage_refit
from fashioncomp.training.train import pick_device

TINY = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=2",
        "train.deterministic=true", "predict.tta=[none]"]


@pytest.fixture(scope="module")
def refit_run(tiny_dataset, tmp_path_factory):
    run = init_run(tmp_path_factory.mktemp("refit") / "run", tiny_dataset, None,
                   TINY + ["refit.enabled=true", "refit.epochs=3", "refit.blend=0.25"])
    stage_split(run)
    stage_train(run, progress=False)
    stage_refit(run, progress=False)
    return Run(run.dir)


def test_refit_trains_every_row_for_its_epochs_and_keeps_the_last(refit_run, capsys):
    metrics = pd.read_csv(refit_run.refit_dir / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2, 3]
    assert not any(c.startswith("val/") for c in metrics.columns)  # nothing held out, nothing scored
    assert (refit_run.refit_dir / "best.pt").is_file() and (refit_run.refit_dir / "done.json").is_file()
    stage_refit(refit_run)
    assert "refit: already trained" in capsys.readouterr().out


def test_oof_is_the_folds_alone_and_the_test_prediction_blends_the_refit(refit_run, tiny_dataset):
    scores = stage_oof(refit_run)
    assert scores["rows"] == 96
    path = stage_predict(refit_run)
    probs = np.load(path)
    assert float(probs["refit_blend"]) == 0.25
    from fashioncomp.data.dataset_reader import read_test
    from fashioncomp.pipeline import _predict

    paths = read_test(tiny_dataset)
    images, _ = refit_run.images(paths)
    index = np.arange(len(paths))
    device = pick_device()
    parts = [_predict(refit_run, refit_run.load_model(p, device), images, index, ["none"], device)[0]
             for p in [refit_run.fold_dir(0) / "best.pt", refit_run.fold_dir(1) / "best.pt",
                       refit_run.refit_dir / "best.pt"]]
    expected = 0.375 * parts[0] + 0.375 * parts[1] + 0.25 * parts[2]
    np.testing.assert_allclose(probs["category"], expected, atol=1e-5)
    assert not np.allclose(parts[2], (parts[0] + parts[1]) / 2, atol=1e-3)  # the refit is a model of its own


def test_predict_refuses_a_recipe_whose_refit_is_missing(tiny_dataset, tmp_path):
    run = init_run(tmp_path / "run", tiny_dataset, None, TINY + ["refit.enabled=true", "train.epochs=1"])
    stage_split(run)
    stage_train(run, folds_to_train=[0], progress=False)
    with pytest.raises(ConfigError, match="refit/best.pt: not found.*fashioncomp refit --run"):
        stage_predict(run)


def test_the_budget_plans_the_refit_and_its_prediction():
    probe = Speeds(100.0, 300.0, 96)
    without = plan_budget(1200, probe, Workload(3000, 1000, 2, 60.0), Limits((4,), (96,)))
    with_refit = plan_budget(1200, probe, Workload(3000, 1000, 2, 60.0, refit=True), Limits((4,), (96,)))
    assert "refit" not in without.stage_seconds
    assert with_refit.stage_seconds["refit"] == pytest.approx(with_refit.epochs * 3000 / 100.0)
    assert with_refit.epochs < without.epochs
    assert with_refit.stage_seconds["predict"] == pytest.approx(without.stage_seconds["predict"] * 5 / 4)
    assert sum(with_refit.stage_seconds.values()) <= 1200 * 0.92
