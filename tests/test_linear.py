"""The linear model blended into the networks: fitted out of fold, weighted out of fold, applied alike to the test rows."""
import json

import numpy as np
import pytest

from fashioncomp.budget.planner import Limits, Speeds, Workload, plan_budget
from fashioncomp.config import ConfigError, load_config
from fashioncomp.data.dataset_reader import LabelledData, read_test
from fashioncomp.io import read_npz
from fashioncomp.linear import stage as linear_stage
from fashioncomp.linear.apply import PARAMS, linear_probs
from fashioncomp.linear.blend import choose_weights, weight_grid
from fashioncomp.linear.features import N_FEATURES, array_features
from fashioncomp.linear.cost import LinearCost
from fashioncomp.linear.model import LinearModel
from fashioncomp.pipeline import Run, init_run, stage_oof, stage_predict, stage_split, stage_thresholds, stage_train

TINY = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=1",
        "train.deterministic=true", "predict.tta=[none]"]


def _labelled(categories: np.ndarray, attributes: np.ndarray) -> LabelledData:
    return LabelledData([f"{i}.jpg" for i in range(len(categories))], categories, attributes.astype(np.uint8),
                        np.ones(attributes.shape, dtype=bool))


def test_weights_go_to_a_linear_model_that_helps_and_stay_0_for_one_that_does_not():
    rng = np.random.default_rng(0)
    n, classes = 200, 4
    categories = rng.integers(0, classes, n)
    attributes = rng.random((n, 3)) < 0.4
    data = _labelled(categories, attributes)
    # the networks are right, narrowly, on 60% of the rows; the linear model, confidently, on the others:
    # a blend gets every row right for weights in (0.25, 0.5) (category) and (0.2, 0.5) (attributes)
    right = rng.random(n) < 0.6
    rows = np.arange(n)
    net_cat = np.full((n, classes), 0.2)
    net_cat[rows, np.where(right, categories, (categories + 1) % classes)] = 0.4
    lin_cat = np.full((n, classes), 0.1)
    lin_cat[rows, categories] = 0.7
    lin_cat[right] = 0.2
    lin_cat[rows[right], (categories[right] + 2) % classes] = 0.4
    net_attr = np.where(right[:, None] == attributes, 0.6, 0.4)
    lin_attr = np.where(right[:, None], np.where(attributes, 0.4, 0.6), np.where(attributes, 0.9, 0.1))
    helps = choose_weights(data, net_cat, net_attr, lin_cat, lin_attr, (), "samples", 0.5)
    assert (helps.category, helps.attributes) == (0.3, 0.25)  # the smallest weights that get every row right
    assert helps.scores["category"][0.3] == 1.0 == helps.scores["attributes"][0.25]
    assert helps.scores["category"][0.0] == pytest.approx(np.mean(right))
    assert set(helps.scores["category"]) == set(weight_grid(0.5)) == {round(0.05 * i, 2) for i in range(11)}
    noise = choose_weights(data, net_cat, net_attr, np.full((n, classes), 1 / classes), np.full((n, 3), 0.5),
                           (), "samples", 0.5)
    assert noise.category == 0.0 and noise.attributes == 0.0  # ties go to the smaller weight


def test_the_model_gives_probabilities_for_every_category_even_unseen_ones():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5))
    categories = (x[:, 0] > 0).astype(np.int64) * 2  # classes 0 and 2 of 4; 1 and 3 never seen
    attributes = np.stack([x[:, 1] > 0, np.zeros(60, bool)], axis=1)
    cat, attr = LinearModel(4, c=1.0).fit(x, _labelled(categories, attributes)).predict_proba(x)
    assert cat.shape == (60, 4) and np.allclose(cat.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(cat[:, [1, 3]] == 0) and np.mean(cat.argmax(1) == categories) > 0.9
    assert np.all(attr[:, 1] == 0.0)  # a constant attribute is predicted as its constant
    assert np.mean((attr[:, 0] >= 0.5) == attributes[:, 0]) > 0.9


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_exported_model_predicts_as_scikit_learn_does(n_classes):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 6)) * 3 + 1
    categories = rng.integers(0, n_classes, 80)
    attributes = np.stack([x[:, 0] + rng.normal(size=80) > 1, np.ones(80, bool)], axis=1)
    model = LinearModel(5, c=0.5).fit(x, _labelled(categories, attributes))
    cat, attr = model.predict_proba(x)  # numpy, from the exported arrays
    scaled = model.scaler.transform(x)
    np.testing.assert_allclose(cat[:, model.category.classes_], model.category.predict_proba(scaled), atol=1e-6)
    np.testing.assert_allclose(attr[:, 0], model.attributes[0].predict_proba(scaled)[:, 1], atol=1e-6)
    assert np.all(attr[:, 1] == 1.0)


@pytest.fixture(scope="module")
def linear_run(tiny_dataset, trained_run_factory):
    run = trained_run_factory("linear", tiny_dataset,
                              TINY + ["linear.enabled=true", "linear.c=1.0", "linear.tasks=[category, attributes]"])
    stage_oof(run)
    return Run(run.dir)


def test_each_folds_linear_model_never_saw_its_rows(linear_run, monkeypatch):
    fitted = []
    real_fit = LinearModel.fit

    def recording_fit(self, features, data):
        fitted.append(set(data.file_paths))
        return real_fit(self, features, data)

    monkeypatch.setattr(LinearModel, "fit", recording_fit)
    report = linear_stage.stage_linear(linear_run, force=True)
    data = linear_run.train_data()
    folds = linear_run.folds(data)
    by_fold = [{p for p, f in zip(data.file_paths, folds) if f == k} for k in (0, 1)]
    assert fitted[:2] == [by_fold[1], by_fold[0]]  # fold k's probabilities come from the other fold's rows
    assert fitted[2] == set(data.file_paths)       # the model kept for the test rows: every row
    saved = read_npz(linear_run.dir / "linear.npz")
    assert saved["oof_category"].shape == (96, linear_run.schema.num_categories)
    assert saved["model_category_coef"].shape[1] == saved["model_mean"].shape[0] == N_FEATURES
    assert float(saved["category_weight"]) == report["category_weight"]
    summary = json.loads((linear_run.dir / "linear.json").read_text())
    assert set(summary["oof_scores_by_weight"]["category"]) == {str(w) for w in weight_grid(0.5)}


def test_thresholds_and_the_test_prediction_use_the_blend_and_notice_a_new_one(linear_run, capsys):
    linear_stage.stage_linear(linear_run)
    assert "linear: " in capsys.readouterr().out
    net_oof = read_npz(linear_run.dir / "oof.npz")
    stage_thresholds(linear_run, force=True)
    report = json.loads((linear_run.dir / "thresholds.json").read_text())
    lin = dict(read_npz(linear_run.dir / "linear.npz"))
    assert report["linear_weights"] == {"category": float(lin["category_weight"]),
                                        "attributes": float(lin["attributes_weight"])}
    from fashioncomp.report import write_report

    report_md = write_report(linear_run.dir).read_text()
    weight = report["linear_weights"]["category"]
    assert f"| linear model blend (weight {weight:g}) | category accuracy |" in report_md
    assert f"blended into the networks' probabilities with weight {weight:g} (category)" in report_md
    # a linear model given all the weight: the networks' predictions no longer count
    lin["category_weight"], lin["attributes_weight"] = np.float64(1.0), np.float64(1.0)
    np.savez(linear_run.dir / "linear.npz", **lin)
    stage_thresholds(linear_run)
    out = capsys.readouterr().out
    assert "thresholds (" in out and "up to date" not in out  # the new linear.npz redoes the thresholds
    tuned = json.loads((linear_run.dir / "thresholds.json").read_text())["oof_scores_tuned"]
    data = linear_run.train_data()
    assert tuned["category_accuracy"] == pytest.approx(np.mean(lin["oof_category"].argmax(1) == data.categories))
    assert not np.allclose(net_oof["category"], lin["oof_category"])
    probs = np.load(stage_predict(linear_run))
    test_images, _ = linear_run.images(read_test(linear_run.data_root))
    params = {name: lin[f"model_{name}"] for name in PARAMS}
    expected_cat, expected_attr = linear_probs(params, array_features(test_images), linear_run.schema.num_categories)
    np.testing.assert_allclose(probs["category"], expected_cat, atol=1e-6)
    np.testing.assert_allclose(probs["attributes"], expected_attr, atol=1e-6)


def test_a_task_left_out_of_linear_tasks_keeps_the_networks_alone():
    rng = np.random.default_rng(2)
    n = 50
    data = _labelled(rng.integers(0, 3, n), rng.random((n, 2)) < 0.5)
    perfect_attr = data.attributes.astype(float)
    weights = choose_weights(data, rng.random((n, 3)), rng.random((n, 2)), rng.random((n, 3)), perfect_attr, (),
                             "samples", 0.5, tasks=("category",))
    assert weights.attributes == 0.0 and list(weights.scores["attributes"]) == [0.0]
    model = LinearModel(3, c=1.0, attributes=False).fit(rng.normal(size=(n, 4)), data)
    assert model.attributes == []
    cat, attr = model.predict_proba(rng.normal(size=(7, 4)))
    assert cat.shape == (7, 3) and attr.shape == (7, 2) and not attr.any()


def test_a_recipe_with_the_linear_model_refuses_to_predict_without_it(tiny_dataset, tmp_path):
    run = init_run(tmp_path / "run", tiny_dataset, None, TINY + ["linear.enabled=true"])
    stage_split(run)
    stage_train(run, folds_to_train=[0], progress=False)
    stage_oof(run)
    with pytest.raises(Exception, match="linear.npz.*fashioncomp linear --run"):
        stage_thresholds(run)


def test_linear_settings_are_range_checked():
    with pytest.raises(ConfigError, match="linear.max_weight"):
        load_config(None, ["linear.max_weight=1.5"])
    with pytest.raises(ConfigError, match="linear.c"):
        load_config(None, ["linear.c=0"])
    with pytest.raises(ConfigError, match="'linear.tasks' must be a non-empty list of category, attributes"):
        load_config(None, ["linear.tasks=[category, colour]"])
    assert load_config(None, ["linear.tasks=[category]"])["linear"]["tasks"] == ["category"]


def test_the_budget_plans_the_linear_stage_per_fold():
    probe = Speeds(100.0, 300.0, 96)
    cost = LinearCost(feature_seconds=0.002, fit_seconds=0.01)
    without = plan_budget(1200, probe, Workload(3000, 1000, 2, 60.0), Limits((2,), (96,)))
    with_linear = plan_budget(1200, probe, Workload(3000, 1000, 2, 60.0, linear=cost), Limits((2,), (96,)))
    assert "linear" not in without.stage_seconds
    assert with_linear.stage_seconds["linear"] == pytest.approx(0.002 * 4000 + 0.01 * 3000 * 2)
    assert with_linear.epochs < without.epochs
    assert sum(with_linear.stage_seconds.values()) <= 1200 * 0.92


def test_the_plan_stage_times_the_linear_model_and_plans_its_minutes(tiny_dataset, tmp_path, capsys):
    from fashioncomp.budget.stage import stage_plan

    run = init_run(tmp_path / "run", tiny_dataset, None,
                   ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "budget.minutes=20m",
                    "linear.enabled=true"])
    plan = stage_plan(run)
    assert plan.stage_seconds["linear"] > 0
    assert ", linear " in capsys.readouterr().out.split("planned minutes:")[1]  # among the stages' minutes
    saved = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert saved["stage_seconds"]["linear"] == pytest.approx(plan.stage_seconds["linear"])


def test_the_cost_model_counts_every_image_and_a_fit_per_fold():
    cost = LinearCost(feature_seconds=0.001, fit_seconds=0.01)
    assert cost.stage_seconds(3000, 1000, 2) == pytest.approx(4.0 + 60.0)  # fits: 2 x 1500 rows + 3000 rows
    assert cost.stage_seconds(3000, 1000, 5) == pytest.approx(4.0 + 150.0)  # 5 x 2400 + 3000


def test_a_kaggle_inference_kernel_attaching_the_weights_predicts_with_the_linear_model(linear_run, tmp_path):
    from fashioncomp.kaggle.weights import attach_weights, export_weights

    linear_stage.stage_linear(linear_run)
    stage_thresholds(linear_run)
    local = np.load(stage_predict(linear_run))
    weights = export_weights(linear_run.dir, tmp_path / "weights", "someone/fc-weights", "weights")
    assert (weights / "linear.npz").is_file()
    attached = Run(attach_weights(weights, linear_run.data_root, tmp_path / "kernel-run"))
    remote = np.load(stage_predict(attached))
    np.testing.assert_allclose(remote["category"], local["category"], atol=1e-6)
    np.testing.assert_allclose(remote["attributes"], local["attributes"], atol=1e-6)
