"""The logistic-regression reference."""
import pytest
import numpy as np
import pandas as pd

from fashioncomp.baselines.logreg import main
from fashioncomp.linear.features import image_features
from fashioncomp.linear.model import LinearModel
from fashioncomp.data.dataset_reader import read_test, read_train


def test_features_and_fit_learn_the_training_labels(tiny_dataset):
    data, schema = read_train(tiny_dataset, check_images=False)
    x = image_features(tiny_dataset, data.file_paths)
    assert x.shape == (len(data), 24 * 24 * 3 + 12 * 4 * 4)
    assert np.allclose(x[:, -192:].sum(axis=1), 1.0)  # the HSV histogram is normalised
    model = LinearModel(schema.num_categories, c=1.0).fit(x, data)
    categories, attributes = model.predict(x)
    assert np.mean(categories == data.categories) > 0.9
    assert attributes.shape == data.attributes.shape and attributes.dtype == bool
    assert np.mean(attributes == data.attributes.astype(bool)) > 0.9


def test_command_writes_a_valid_submission(tiny_dataset, tmp_path, capsys):
    assert main(["--data", str(tiny_dataset), "--out", str(tmp_path / "lr")]) == 0
    cat = pd.read_csv(tmp_path / "lr" / "category.csv")
    attr = pd.read_csv(tmp_path / "lr" / "attribute.csv", keep_default_na=False, dtype=str)
    assert list(cat["file_path"]) == read_test(tiny_dataset) == list(attr["file_path"])
    assert "logreg reference: 96 training images in" in capsys.readouterr().out


def test_plain_model_trains_on_every_row_and_writes_a_valid_submission(tiny_dataset, tmp_path, capsys):
    from fashioncomp.baselines.plain import main as plain_main

    assert plain_main(["--data", str(tiny_dataset), "--epochs", "2", "--out", str(tmp_path / "sub"),
                       "--work", str(tmp_path / "work"), "--set", "model.backbone=test_resnet",
                       "--set", "data.image_size=32"]) == 0
    metrics = pd.read_csv(tmp_path / "work" / "model" / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    cat = pd.read_csv(tmp_path / "sub" / "category.csv")
    assert list(cat["file_path"]) == read_test(tiny_dataset)
    assert "plain: 96 training images x 2 epochs" in capsys.readouterr().out


def test_plain_epochs_fill_the_minutes_left_after_setup_and_test_prediction():
    from fashioncomp.baselines.plain import SAFETY, epochs_for_minutes

    # 10 min x 0.95 = 570 s - 30 s setup - 1000 test rows / 200 img/s = 535 s at 3000 rows / 100 img/s
    epochs, seconds = epochs_for_minutes(10, 30.0, 3000, 1000, train_ips=100.0, infer_ips=200.0)
    assert SAFETY == 0.95 and seconds == pytest.approx(535.0) and epochs == 17
    assert epochs_for_minutes(0.1, 30.0, 3000, 1000, 100.0, 200.0)[0] == 1  # always at least one epoch


def test_plain_model_given_minutes_fills_them_from_its_measured_first_epoch_and_keeps_to_them(tiny_dataset, tmp_path,
                                                                                              capsys):
    import re
    import time

    from fashioncomp.baselines.plain import main as plain_main

    started = time.perf_counter()
    assert plain_main(["--data", str(tiny_dataset), "--minutes", "0.5", "--out", str(tmp_path / "sub"),
                       "--work", str(tmp_path / "work"), "--set", "model.backbone=test_resnet",
                       "--set", "data.image_size=32"]) == 0
    wall = time.perf_counter() - started
    out = capsys.readouterr().out
    guess = int(re.search(r"plain: 0.5 min at \d+ training img/s -> (\d+) epochs \(first guess\)", out).group(1))
    filled = int(re.search(r"fold 0: (\d+) epochs fill its (\d+)s at the measured", out).group(1))
    metrics = pd.read_csv(tmp_path / "work" / "model" / "metrics.csv")
    assert guess > 2 and filled > 2 and 1 <= len(metrics) <= filled
    assert metrics["seconds"].sum() <= 30 * 0.95  # the epochs fit the training time planned
    # model set-up, loading the checkpoint, predicting and writing add a few seconds on top, which
    # is noise at real budgets (the frontier's plain runs: 4.0, 9.4 and 18.8 min for 5, 10 and 20)
    assert wall <= 30 + 10
