"""The budget planner on fake probe speeds, the per-fold re-plan, and the plan stage on a tiny run."""
import json
import math

import pytest

from fashioncomp.budget.planner import (BudgetError, Limits, Plan, Speeds, Workload, apply_plan, epoch_seconds,
                                        parse_duration, plan_budget, replan_epochs)
from fashioncomp.budget.schedule import schedule_fold
from fashioncomp.training.train import fill_epochs, next_epoch_fits

PROBE = Speeds(train_ips=100.0, infer_ips=300.0, image_size=96)
WORK = Workload(n_train=3000, n_test=1000, tta_views=2, fixed_seconds=60.0)


def total(plan: Plan) -> float:
    return sum(plan.stage_seconds.values())


@pytest.mark.parametrize("minutes", [5, 10, 20, 40])
def test_plan_fills_the_budget_and_no_more(minutes):
    limits = Limits(folds=(4,), image_sizes=(96,))
    plan = plan_budget(minutes * 60, PROBE, WORK, limits)
    assert total(plan) <= minutes * 60 * limits.safety
    # one more epoch per fold would not fit
    assert total(plan) + epoch_seconds(PROBE, WORK.n_train, 4) * 4 > minutes * 60 * limits.safety
    assert (plan.folds, plan.image_size) == (4, 96)
    assert set(plan.stage_seconds) == {"train", "setup and report", "oof", "predict"}


def test_pins_are_respected_and_free_choices_prefer_size_then_folds_once_epochs_suffice():
    free = Limits(folds=(2, 3, 4, 5), image_sizes=(64, 96, 128), target_epochs=15)
    plan = plan_budget(40 * 60, PROBE, WORK, free)
    assert plan.epochs >= 15
    # nothing larger affords the target: the next size up, with the fewest folds, falls short
    bigger = plan_budget(40 * 60, PROBE, WORK, Limits(folds=(2,), image_sizes=(128,)))
    assert plan.image_size == 128 or bigger.epochs < 15
    pinned = plan_budget(40 * 60, PROBE, WORK, Limits(folds=(5,), image_sizes=(64,)))
    assert (pinned.folds, pinned.image_size) == (5, 64)
    # a small budget gives up size and folds for epochs
    small = plan_budget(6 * 60, PROBE, WORK, free)
    assert small.epochs < 15 and (small.image_size, small.folds) == (64, 2)


def test_speeds_scale_with_pixels():
    assert PROBE.at(192).train_ips == pytest.approx(25.0)
    assert PROBE.at(48).infer_ips == pytest.approx(1200.0)


def test_too_small_a_budget_is_a_clear_error_naming_the_minimum():
    limits = Limits(folds=(4,), image_sizes=(96,))
    with pytest.raises(BudgetError, match=r"budget of 60 s is too small.*at least (\d+\.\d) min") as err:
        plan_budget(60, PROBE, WORK, limits)
    minimum = float(str(err.value).split("at least ")[1].split(" min")[0])
    plan_budget((minimum + 0.1) * 60, PROBE, WORK, limits)  # the minimum it names does fit
    with pytest.raises(BudgetError):
        plan_budget((minimum - 0.1) * 60, PROBE, WORK, limits)


def test_parse_duration():
    assert parse_duration("20m") == 1200 and parse_duration("1.5h") == 5400 and parse_duration("90s") == 90
    assert parse_duration(20) == 1200 and parse_duration("20") == 1200 and parse_duration("2min") == 120
    for bad in ["fast", "-5m", "0", "m"]:
        with pytest.raises(BudgetError):
            parse_duration(bad)


def test_apply_plan_sets_folds_size_and_epochs_only():
    config = {"split": {"n_folds": 5, "seed": 1}, "data": {"image_size": 64, "root": "x"},
              "train": {"epochs": 10, "lr": 0.1}, "model": {"backbone": "r"}}
    plan = plan_budget(1200, PROBE, WORK, Limits(folds=(3,), image_sizes=(96,)))
    out = apply_plan(config, plan)
    assert out["split"] == {"n_folds": 3, "seed": 1} and out["data"] == {"image_size": 96, "root": "x"}
    assert out["train"] == {"epochs": plan.epochs, "lr": 0.1} and config["train"]["epochs"] == 10


def test_replan_keeps_the_plan_when_on_time_and_cuts_epochs_when_slow():
    limits = Limits(folds=(4,), image_sizes=(96,))
    plan = plan_budget(1200, PROBE, WORK, limits)
    per_fold = plan.stage_seconds["train"] / 4
    assert replan_epochs(plan, per_fold * 4, 4, plan.epoch_seconds, limits) == plan.epochs
    assert replan_epochs(plan, per_fold * 4, 4, plan.epoch_seconds / 2, limits) == plan.epochs  # never more
    assert replan_epochs(plan, per_fold * 4, 4, plan.epoch_seconds * 2, limits) == plan.epochs // 2
    assert replan_epochs(plan, 0.0, 2, plan.epoch_seconds, limits) == limits.min_epochs


def simulate(plan: Plan, limits: Limits, tmp_path, slowdown, refit_slowdown: float | None = None,
             first_epoch_slowdown: float = 1.0) -> float:
    """Train every fold on a fake clock whose epochs take `slowdown(fold, epoch)` x the planned time;
    return the whole run's seconds, the later stages slowed like the last epoch. The refit's epochs
    take `refit_slowdown` x its planned epoch (default: as slow as the last fold epoch), and its
    epoch count is set again from its epochs' times up to half-way, as `train_fold(fill_time=True)` does;
    its first epoch takes `first_epoch_slowdown` x longer."""
    clock, epochs_done, factor = 0.0, 0, 1.0
    for k in range(plan.folds):
        folder = tmp_path / f"fold_{k}"
        folder.mkdir()
        epochs, limit = schedule_fold(plan, limits, folder, clock, epochs_done, 0.0, plan.folds - k)
        seconds: list[float] = []
        for epoch in range(epochs):
            if not next_epoch_fits(seconds, limit):
                break
            factor = slowdown(k, epoch)
            seconds.append(plan.epoch_seconds * factor)
        clock += sum(seconds)
        epochs_done += len(seconds)
    fold_clock = clock
    if "refit" in plan.stage_seconds:
        folder = tmp_path / "refit"
        folder.mkdir()
        epochs, limit = schedule_fold(plan, limits, folder, clock, epochs_done, 0.0, 0, is_refit=True)
        factor = factor if refit_slowdown is None else refit_slowdown
        seconds, guess = [], epochs
        while len(seconds) < epochs:
            if not next_epoch_fits(seconds, limit):
                break
            # the first epoch carries the start-up, as a real one does
            seconds.append(plan.refit_epoch_seconds * factor * (first_epoch_slowdown if not seconds else 1.0))
            if len(seconds) <= max(1, epochs // 2):  # train_fold(fill_time=True) re-plans up to half-way
                epochs = fill_epochs(seconds, limit, guess, None if len(seconds) == 1 else epochs)
        clock += sum(seconds)
        (folder / "epochs_run.txt").write_text(str(len(seconds)))
        assert seconds and fold_clock > 0
    later = sum(v for k, v in plan.stage_seconds.items() if k not in ("train", "refit"))
    return clock + later * factor


@pytest.mark.parametrize("name,slowdown", [
    ("as probed", lambda k, e: 1.0),
    ("1.5x slower throughout", lambda k, e: 1.5),
    ("2x slower from the second fold", lambda k, e: 1.0 if k == 0 else 2.0),
    ("3x slower from the middle of the first fold", lambda k, e: 1.0 if (k, e < 4) == (0, True) else 3.0),
])
def test_drift_is_absorbed_within_ten_percent(tmp_path, name, slowdown):
    limits = Limits(folds=(4,), image_sizes=(96,))
    plan = plan_budget(1200, PROBE, WORK, limits)
    assert plan.epochs >= 8
    used = simulate(plan, limits, tmp_path, slowdown)
    assert used <= 1200 * 1.10, name


@pytest.mark.parametrize("slowdown", [1.0, 1.5, 2.5])
def test_a_refit_after_the_folds_stays_within_the_budget_too(tmp_path, slowdown):
    limits = Limits(folds=(4,), image_sizes=(96,))
    plan = plan_budget(1200, PROBE, Workload(3000, 1000, 2, 60.0, refit=True), limits)
    assert plan.stage_seconds["refit"] > 0
    assert simulate(plan, limits, tmp_path, lambda k, e: slowdown) <= 1200 * 1.10


def test_without_replanning_a_slow_machine_would_overshoot(tmp_path):
    """The check above can fail: the same slowdown with the plan's fixed epochs goes far over."""
    plan = plan_budget(1200, PROBE, WORK, Limits(folds=(4,), image_sizes=(96,)))
    fixed = plan.epochs * plan.folds * plan.epoch_seconds * 1.5 + \
        sum(v for s, v in plan.stage_seconds.items() if s != "train") * 1.5
    assert fixed > 1200 * 1.10


def test_an_interrupted_fold_keeps_its_schedule(tmp_path):
    limits = Limits(folds=(2,), image_sizes=(96,))
    plan = plan_budget(600, PROBE, WORK, limits)
    epochs, _ = schedule_fold(plan, limits, tmp_path, 0.0, 0, 0.0, 2)
    slow = plan.epoch_seconds * 3 * 2  # two slow epochs, then killed
    again, limit = schedule_fold(plan, limits, tmp_path, slow, 2, slow, 2)
    assert again == epochs == json.loads((tmp_path / "budget.json").read_text())["epochs"]
    assert limit < plan.stage_seconds["train"]  # but the time left shrank


def test_next_epoch_fits():
    assert next_epoch_fits([], 1.0) and next_epoch_fits([5.0], None)
    assert next_epoch_fits([10.0, 10.0], 30.0) and not next_epoch_fits([10.0, 10.0], 29.9)


TINY = ["model.backbone=test_resnet", "data.image_size=32", "split.n_folds=2", "train.epochs=50"]


def test_plan_stage_probes_plans_and_the_run_follows_the_plan(tiny_dataset, tmp_path, capsys):
    from fashioncomp.budget.stage import stage_plan
    from fashioncomp.pipeline import Run, init_run, stage_split

    run = init_run(tmp_path / "run", tiny_dataset, None, TINY + ["budget.minutes=3m", "budget.folds=[2, 3]"])
    plan = stage_plan(run)
    out = capsys.readouterr().out
    assert "plan (probe" in out and "budget 3.0 min ->" in out
    saved = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert saved["folds"] == plan.folds and saved["epochs"] == plan.epochs <= 100
    assert saved["speeds"]["train_ips"] > 0 and saved["speeds"]["infer_ips"] > 0
    reopened = Run(tmp_path / "run")
    assert reopened.n_folds == plan.folds and reopened.config["train"]["epochs"] == plan.epochs
    assert reopened.recipe_config["train"]["epochs"] == 50  # the saved recipe itself is untouched
    assert len(set(stage_split(reopened))) == plan.folds
    assert stage_plan(reopened) == reopened.plan  # up to date: no second probe
    assert "is up to date" in capsys.readouterr().out


def test_too_small_a_budget_fails_before_training_with_one_line(tiny_dataset, tmp_path, capsys):
    from fashioncomp.cli import main

    assert main(["init", "--run", str(tmp_path / "run"), "--data", str(tiny_dataset)]
                + [a for kv in TINY + ["budget.minutes=1s"] for a in ("--set", kv)]) == 0
    assert main(["plan", "--run", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.split("\r")[-1]  # after the image cache's progress bar
    assert err.startswith("error: a budget of 1 s is too small") and "need at least" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run" / "plan.json").exists()


@pytest.mark.parametrize("ratio", [1.0, 2.0, 3.0])
def test_the_refit_gets_its_ratio_of_the_fold_epochs_within_the_budget(ratio):
    limits = Limits(folds=(2,), image_sizes=(96,))
    work = Workload(3000, 1000, 2, 60.0, refit=True, refit_ratio=ratio)
    plan = plan_budget(1200, PROBE, work, limits)
    assert plan.refit_epochs == max(1, round(plan.epochs * ratio))
    assert plan.refit_epoch_seconds == pytest.approx(3000 / PROBE.train_ips)
    assert total(plan) <= 1200 * limits.safety + plan.refit_epoch_seconds  # rounding of ratio x epochs
    # one more fold epoch (with its share of refit epochs) would not fit
    more = epoch_seconds(PROBE, 3000, 2) * 2 + plan.refit_epoch_seconds * ratio
    assert total(plan) + more > 1200 * limits.safety
    assert f"2 folds x {plan.epochs} epochs + refit {plan.refit_epochs} epochs on every row" in plan.describe()


def test_a_refit_after_folds_that_ran_fast_takes_the_time_they_left(tmp_path):
    limits = Limits(folds=(2,), image_sizes=(96,))
    plan = plan_budget(1200, PROBE, Workload(3000, 1000, 2, 60.0, refit=True, refit_ratio=2.0), limits)
    used = simulate(plan, limits, tmp_path, lambda k, e: 0.7)
    refit = json.loads((tmp_path / "refit" / "budget.json").read_text())
    assert refit["epochs"] > plan.refit_epochs and refit["planned_epochs"] == plan.refit_epochs
    assert 1200 * 0.8 <= used <= 1200 * 1.10


def test_a_slow_first_fold_costs_every_later_model_its_share_not_the_last_fold_alone(tmp_path):
    """fr7's case: fold 0 ran 10% slower than planned; fold 1 lost 5 of 11 epochs while the refit
    kept its planned epochs whole. Shared in proportion, both give way alike."""
    limits = Limits(folds=(2,), image_sizes=(96,))
    plan = plan_budget(1200, PROBE, Workload(3000, 1000, 2, 60.0, refit=True, refit_ratio=2.0), limits)
    used = simulate(plan, limits, tmp_path, lambda k, e: 1.1)
    second = json.loads((tmp_path / "fold_1" / "budget.json").read_text())["epochs"]
    assert second >= math.floor(plan.epochs / 1.1) - 1 > plan.epochs * 0.75
    refit = int((tmp_path / "refit" / "epochs_run.txt").read_text())
    assert refit >= math.floor(plan.refit_epochs / 1.1) - 1
    assert used <= 1200 * 1.10


@pytest.mark.parametrize("refit_speed", [0.8, 1.0])
def test_a_refit_faster_than_the_folds_drift_fills_the_time_left(tmp_path, refit_speed):
    """The folds ran 15% slow, so the refit is priced 15% slow too; when it runs faster, its first
    measured epoch resets its count and the run still uses its budget (fr7 ended 3.2 minutes early)."""
    limits = Limits(folds=(2,), image_sizes=(96,))
    plan = plan_budget(1200, PROBE, Workload(3000, 1000, 2, 60.0, refit=True, refit_ratio=2.0), limits)
    used = simulate(plan, limits, tmp_path, lambda k, e: 1.15, refit_slowdown=refit_speed)
    guess = json.loads((tmp_path / "refit" / "budget.json").read_text())["epochs"]
    run = int((tmp_path / "refit" / "epochs_run.txt").read_text())
    assert run > guess
    # all is used but the rounding to whole epochs and what the later stages, priced at the folds'
    # speed, save by running at the refit's
    later = sum(v for k, v in plan.stage_seconds.items() if k not in ("train", "refit"))
    unused = plan.refit_epoch_seconds * refit_speed + later * (1.15 - refit_speed)
    assert 1200 * limits.safety - unused <= used <= 1200 * 1.10


def test_fill_epochs():
    assert fill_epochs([10.0], 100.0, 5) == 10            # 9 more 10 s epochs fit in the 90 s left
    assert fill_epochs([20.0, 15.0], 100.0, 5) == 6       # the later epochs set the pace: 65 s left, 4 more
    assert fill_epochs([12.0, 10.0, 10.0], 100.0, 5) == 9  # a slow first epoch (start-up) does not
    assert fill_epochs([10.0], 5.0, 5) == 1               # never fewer than done
    assert fill_epochs([0.1], 1000.0, 3) == 30            # at most 10x the first guess
    # against a current count: kept if it or one more fits, cut if it no longer fits, raised by two or more
    assert fill_epochs([12.0, 10.0, 10.0], 100.0, 5, current=8) == 8
    assert fill_epochs([12.0, 10.0, 10.0], 100.0, 5, current=9) == 9
    assert fill_epochs([12.0, 10.0, 10.0], 100.0, 5, current=10) == 9
    assert fill_epochs([12.0, 10.0, 10.0], 100.0, 5, current=7) == 9


def test_a_refit_whose_first_epoch_is_slow_still_fills_its_time(tmp_path):
    """fr9: the refit's first epoch took 31.4 s against 28.0 for the rest, so a count set from it
    alone was 20 of the 22 epochs that fit, and 84 s of the refit's 647 went unused."""
    limits = Limits(folds=(2,), image_sizes=(96,))
    plan = plan_budget(1200, PROBE, Workload(3000, 1000, 2, 60.0, refit=True, refit_ratio=2.0), limits)
    used = simulate(plan, limits, tmp_path, lambda k, e: 1.0, first_epoch_slowdown=1.12)
    run = int((tmp_path / "refit" / "epochs_run.txt").read_text())
    limit = json.loads((tmp_path / "refit" / "budget.json").read_text())["train_seconds_left"]
    # every epoch that fits at the steady pace, after the slow first one
    assert run == 1 + math.floor((limit - plan.refit_epoch_seconds * 1.12) / plan.refit_epoch_seconds)
    assert used <= 1200 * 1.10


def test_the_probe_times_only_its_measured_steps_after_the_warm_up(tiny_dataset, tmp_path, monkeypatch, one_thread):
    """Slow warm-up steps (allocator, kernel caches) must not lower the speed the plan is made from."""
    import time
    from types import SimpleNamespace

    from fashioncomp.budget import probe
    from fashioncomp.config import load_config
    from fashioncomp.data.group_discovery import read_train_for_recipe
    from fashioncomp.data.images import build_image_cache
    from fashioncomp.tasks import tasks_from_config

    calls = []

    def fake_epoch(opt, batches, epoch, mix_rng):
        n = sum(1 for _ in batches)
        calls.append(n)
        time.sleep(n * (0.2 if len(calls) == 1 else 0.01))  # the warm-up runs 20x slower per step
        return SimpleNamespace(steps=n)

    monkeypatch.setattr(probe, "train_one_epoch", fake_epoch)
    cfg = load_config(None, TINY + ["train.batch_size=8"])
    data, schema = read_train_for_recipe(tiny_dataset, cfg["data"])
    images, _ = build_image_cache(tiny_dataset, data.file_paths, 32, tmp_path)
    speeds = probe.probe_speeds(cfg, images, data, tasks_from_config(schema, cfg["data"]), schema.num_attributes)
    assert calls == [2, 20]  # the loader cycles: 96 rows give 12 batches of 8, more steps than one pass
    # 8 images per 0.01 s step, less overhead; timing the warm-up too reads about 240
    assert 400 < speeds.train_ips <= 800


def test_validating_only_the_last_epochs_buys_epochs_within_the_same_budget():
    limits = Limits(folds=(2,), image_sizes=(96,))
    every = plan_budget(1200, PROBE, Workload(3000, 1000, 2, 60.0, refit=True), limits)
    last_two = plan_budget(1200, PROBE, Workload(3000, 1000, 2, 60.0, refit=True, validated_epochs=2), limits)
    assert last_two.epochs > every.epochs and total(last_two) <= 1200 * limits.safety
    # what a fold really pays: training in every epoch, the held-out half's pass in the last two only
    fold = last_two.epochs * 1500 / PROBE.train_ips + 2 * 1500 / PROBE.infer_ips
    assert last_two.stage_seconds["train"] == pytest.approx(2 * fold)
    every_epoch = 1500 / PROBE.train_ips + 1500 / PROBE.infer_ips
    assert every.stage_seconds["train"] == pytest.approx(2 * every.epochs * every_epoch)
