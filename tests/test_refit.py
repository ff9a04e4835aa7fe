"""The refit on every training row: trained without held-out rows, blended only into the test prediction."""
import shutil

import numpy as np
import pandas as pd
import pytest

from fashioncomp.budget.planner import Limits, Speeds, Workload, plan_budget
from fashioncomp.config import ConfigError
from fashioncomp.pipeline import Run, init_run, stage_oof, stage_predict, stage_split, stage_train
from fashioncomp.refit import stage_refit
from fashioncomp.training.checkpoint import load_checkpoint, save_checkpoint
from fashioncomp.training.train import pick_device

TINY = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=2",
        "train.deterministic=true", "predict.tta=[none]"]


@pytest.fixture(scope="module")
def refit_run(tiny_dataset, trained_run_factory):
    run = trained_run_factory("refit", tiny_dataset, TINY + ["refit.enabled=true", "refit.epochs=3", "refit.blend=0.25"])
    stage_refit(run, progress=False)
    return Run(run.dir)


def test_refit_trains_every_row_for_its_epochs_and_keeps_the_last(refit_run, capsys):
    metrics = pd.read_csv(refit_run.refit_dir / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2, 3]
    assert not any(c.startswith("val/") for c in metrics.columns)  # nothing held out, nothing scored
    assert (refit_run.refit_dir / "best.pt").is_file() and (refit_run.refit_dir / "done.json").is_file()
    stage_refit(refit_run)
    assert "refit: already trained" in capsys.readouterr().out


def test_under_a_budget_the_refit_fills_its_time_limit_from_its_first_epoch(refit_run, tmp_path, capsys):
    """The schedule's epoch count is a first guess priced from the folds' speed; the refit resets it
    from its own first epoch (train_fold's fill_time) so it neither idles nor overruns its minutes."""
    shutil.copytree(refit_run.dir, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "refit")
    run = Run(tmp_path / "run")
    run.plan = object()  # any plan: the schedule below stands for it
    run.budget_schedule = lambda out, folds_left, is_refit=False, rows_scale=1.0: (1, 1e6)
    stage_refit(run, progress=False)
    # an hour's limit: the fill is capped at 10x the first guess of 1 epoch
    assert len(pd.read_csv(run.refit_dir / "metrics.csv")) == 10
    assert "10 epochs fill its 1000000s" in capsys.readouterr().out


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


def test_teacher_targets_invert_the_attribute_probabilities_and_mix_and_select():
    from fashioncomp.data.schema import AttributeGroup  # noqa: F401  (groups come from the schema)
    from fashioncomp.tasks import Task
    from fashioncomp.training.teacher import distill_targets, pseudo_labels, targets_from_probabilities

    tasks = [Task("category", "multiclass", 3), Task("group/g", "multiclass", 3, (0, 1)),
             Task("attributes", "multilabel", 1, (2,))]
    cat = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]], dtype=np.float32)
    attr = np.array([[0.95, 0.02, 0.97], [0.5, 0.1, 0.6]], dtype=np.float32)
    teacher = targets_from_probabilities(cat, attr, tasks)
    np.testing.assert_allclose(teacher["group/g"], [[0.95, 0.02, 0.03], [0.5, 0.1, 0.4]], atol=1e-6)
    np.testing.assert_allclose(teacher["attributes"], [[0.97], [0.6]], atol=1e-6)
    hard = {"category": np.eye(3, dtype=np.float32)[[0, 2]], "group/g": np.eye(3, dtype=np.float32)[[0, 2]],
            "attributes": np.array([[1.0], [0.0]], dtype=np.float32)}
    mixed = distill_targets(hard, teacher, 0.25, rows=np.array([True, False]))
    np.testing.assert_allclose(mixed["category"][0], 0.75 * hard["category"][0] + 0.25 * cat[0], atol=1e-6)
    np.testing.assert_array_equal(mixed["category"][1], hard["category"][1])  # a row the teacher did not see
    assert np.allclose(mixed["category"].sum(axis=1), 1.0)
    keep, targets, masks = pseudo_labels(teacher, tasks, 0.9)
    assert keep.tolist() == [True, False]  # row 1: the category is a toss-up
    np.testing.assert_array_equal(targets["group/g"][0], [1, 0, 0])
    assert masks["attributes"][:, 0].tolist() == [True, False]  # 0.6 is neither >= 0.9 nor <= 0.1
    # a confident category with an unsure group: the row joins, the group is masked
    unsure = targets_from_probabilities(cat[:1], np.array([[0.6, 0.3, 0.99]], dtype=np.float32), tasks)
    keep, targets, masks = pseudo_labels(unsure, tasks, 0.9)
    assert keep.tolist() == [True] and masks["category"].tolist() == [True]
    assert masks["group/g"].tolist() == [False] and masks["attributes"][:, 0].tolist() == [True]
    with pytest.raises(ValueError):
        pseudo_labels(teacher, tasks, 0.5)


def test_refit_distils_the_out_of_fold_probabilities_and_adds_confident_test_images(tiny_dataset, tmp_path,
                                                                                  monkeypatch, capsys):
    import fashioncomp.pipeline as pipeline_module
    import fashioncomp.refit as refit_module
    from fashioncomp.data.dataset_reader import read_test
    from fashioncomp.tasks import encode_targets
    from fashioncomp.training.teacher import targets_from_probabilities

    run = init_run(tmp_path / "run", tiny_dataset, None,
                   TINY + ["refit.enabled=true", "refit.epochs=2", "refit.distill=0.5", "refit.pseudo_label=0.51"])
    stage_split(run)
    stage_train(run, progress=False)
    with pytest.raises(Exception, match="oof.npz.*fashioncomp oof --run"):
        stage_refit(run, progress=False)  # distillation needs the out-of-fold predictions first
    stage_oof(run)
    seen = {}
    real_train_fold = refit_module.train_fold
    monkeypatch.setattr(refit_module, "train_fold",
                        lambda cfg, inputs, *a, **k: seen.update(inputs=inputs) or real_train_fold(cfg, inputs, *a, **k))
    real_ensemble = refit_module.fold_test_probs

    def ensemble_sure_of_rows_3_and_7(*args):
        """The folds' real test probabilities, made confident on two test rows (tiny models never are)."""
        cat, attr = real_ensemble(*args)
        cat, attr = cat.copy(), attr.copy()
        for row, label in ((3, 1), (7, 0)):
            cat[row] = np.eye(cat.shape[1])[label]
            attr[row] = 0.0  # sure of "none" in every group, and of every other attribute's absence
        return cat, attr

    monkeypatch.setattr(refit_module, "fold_test_probs", ensemble_sure_of_rows_3_and_7)
    ensembles = []  # the fold models' test pass: once for the pseudo-labels, reused by the predict stage
    real_pass = pipeline_module.fold_ensemble_probs
    monkeypatch.setattr(pipeline_module, "fold_ensemble_probs", lambda *a: ensembles.append(a) or real_pass(*a))
    stage_refit(run, progress=False)
    out = capsys.readouterr().out
    inputs = seen["inputs"]
    n_train, n_test = len(run.train_data()), len(read_test(tiny_dataset))
    assert f"refit: 2 of {n_test} test images join with pseudo-labels" in out
    assert inputs.train_index[n_train:].tolist() == [n_train + 3, n_train + 7]
    targets, masks = inputs.targets
    oof = np.load(run.dir / "oof.npz")
    hard, _ = encode_targets(run.train_data(), run.tasks)
    teacher = targets_from_probabilities(oof["category"], oof["attributes"], run.tasks)
    np.testing.assert_allclose(targets["category"][:n_train], 0.5 * hard["category"] + 0.5 * teacher["category"],
                               atol=1e-6)
    assert targets["category"][n_train + 3].argmax() == 1 and targets["category"][n_train + 7].argmax() == 0
    assert masks["category"][n_train + 3] and targets["category"][n_train + 3].sum() == 1.0
    assert len(inputs.images) == n_train + n_test
    metrics = pd.read_csv(run.refit_dir / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2] and metrics["train_loss"].notna().all()
    assert stage_predict(run).is_file() and len(ensembles) == 1
    fold_0 = run.fold_dir(0) / "best.pt"  # a fold trained anew (other weights): its test pass is stale
    state = load_checkpoint(fold_0)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    save_checkpoint(fold_0, state)
    stage_predict(run)
    assert len(ensembles) == 2
