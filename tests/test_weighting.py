"""Task weighting: fixed weights, DWA on a known loss history, learned uncertainty, resume."""
import math

import pytest
import torch

from fashioncomp.config import ConfigError, load_config
from fashioncomp.losses.weighting import (WEIGHTINGS, DynamicWeightAverage, TaskWeighting, UncertaintyWeighting,
                                          create_weighting)
from fashioncomp.tasks import Task

TASKS = [Task("category", "multiclass", 5), Task("group/colour", "multiclass", 4, (0, 1, 2)),
         Task("attributes", "multilabel", 3, (3, 4, 5))]
NAMES = [t.name for t in TASKS]


def weighting(name: str, *overrides: str):
    return create_weighting(load_config(None, [f"loss.weighting={name}", *overrides])["loss"], TASKS)


def losses(*values: float) -> dict[str, torch.Tensor]:
    return {n: torch.tensor(v) for n, v in zip(NAMES, values)}


def test_fixed_weights_by_task_name_then_by_kind():
    w = TaskWeighting(TASKS, {"category": 1.0, "attributes": 0.5, "group/colour": 0.95})
    assert w.weights() == {"category": 1.0, "group/colour": 0.95, "attributes": 0.5}
    assert w(losses(2.0, 1.0, 4.0)).item() == pytest.approx(2.0 + 0.95 + 2.0)
    assert list(w.parameters()) == []


def test_task_weights_naming_no_task_or_negative_is_a_config_error():
    with pytest.raises(ConfigError, match="group/color"):
        TaskWeighting(TASKS, {"group/color": 1.0})
    for bad in ("-1.0", "high", ".nan", "true"):  # checked when the config is loaded
        with pytest.raises(ConfigError, match="'loss.task_weights.category' must"):
            load_config(None, [f"loss.task_weights.category={bad}"])
    with pytest.raises(ConfigError, match="unknown loss.weighting 'gradnorm'"):
        weighting("gradnorm")


def dwa_by_hand(before: list[float], last: list[float], temperature: float) -> list[float]:
    """w_k = K exp(r_k / T) / sum_i exp(r_i / T), r_k = L_k(t-1) / L_k(t-2)."""
    e = [math.exp(l / b / temperature) for b, l in zip(before, last)]
    return [len(e) * x / sum(e) for x in e]


def test_dwa_weights_follow_the_formula_on_a_known_loss_history():
    dwa = weighting("dwa", "loss.dwa_temperature=2.0")
    assert isinstance(dwa, DynamicWeightAverage)
    history = [[2.0, 1.0, 0.8], [1.0, 0.9, 0.8], [0.9, 0.3, 0.4]]
    assert dwa.weights() == {n: 1.0 for n in NAMES}                 # epoch 1
    dwa.end_epoch(dict(zip(NAMES, history[0])))
    assert dwa.weights() == {n: 1.0 for n in NAMES}                 # epoch 2
    dwa.end_epoch(dict(zip(NAMES, history[1])))
    expected = dwa_by_hand(history[0], history[1], 2.0)             # epoch 3: r = L(2) / L(1)
    assert list(dwa.weights().values()) == pytest.approx(expected)
    assert expected[0] < expected[1] < expected[2]                  # slowest-falling loss weighs most
    assert dwa(losses(1.0, 2.0, 3.0)).item() == pytest.approx(expected[0] + 2 * expected[1] + 3 * expected[2])
    dwa.end_epoch(dict(zip(NAMES, history[2])))
    assert list(dwa.weights().values()) == pytest.approx(dwa_by_hand(history[1], history[2], 2.0))
    assert sum(dwa.weights().values()) == pytest.approx(3.0)


def test_dwa_temperature_and_fixed_weights_combine():
    dwa = weighting("dwa", "loss.dwa_temperature=0.5", "loss.task_weights.attributes=0.5")
    for epoch in ([1.0, 1.0, 1.0], [0.5, 1.0, 0.25]):
        dwa.end_epoch(dict(zip(NAMES, epoch)))
    expected = dwa_by_hand([1.0, 1.0, 1.0], [0.5, 1.0, 0.25], 0.5)
    assert list(dwa.weights().values()) == pytest.approx([expected[0], 0.5 * expected[1], 0.5 * expected[2]])
    with pytest.raises(ConfigError, match="dwa_temperature"):
        weighting("dwa", "loss.dwa_temperature=0")


def test_dwa_history_survives_a_resume():
    dwa = weighting("dwa")
    dwa.end_epoch(dict(zip(NAMES, [2.0, 1.0, 0.5])))
    resumed = weighting("dwa")
    resumed.load_state_dict(dwa.state_dict())
    for w in (dwa, resumed):
        w.end_epoch(dict(zip(NAMES, [1.0, 0.9, 0.5])))
    assert resumed.weights() == dwa.weights() != {n: 1.0 for n in NAMES}


def test_dwa_task_without_loss_keeps_a_neutral_ratio():
    dwa = weighting("dwa")
    dwa.end_epoch(dict(zip(NAMES, [1.0, 0.0, 1.0])))
    dwa.end_epoch(dict(zip(NAMES, [1.0, 0.0, 1.0])))
    assert all(math.isfinite(v) for v in dwa.weights().values())
    assert list(dwa.weights().values()) == pytest.approx([1.0, 1.0, 1.0])


def test_uncertainty_loss_is_exp_minus_s_times_loss_plus_s():
    unc = weighting("uncertainty")
    assert isinstance(unc, UncertaintyWeighting)
    assert [p.shape for p in unc.parameters()] == [torch.Size([3])]
    with torch.no_grad():
        unc.log_vars.copy_(torch.tensor([0.0, 1.0, -0.5]))
    values = [2.0, 1.5, 0.3]
    expected = sum(math.exp(-s) * v + s for s, v in zip([0.0, 1.0, -0.5], values))
    assert unc(losses(*values)).item() == pytest.approx(expected)
    assert list(unc.weights().values()) == pytest.approx([1.0, math.exp(-1.0), math.exp(0.5)])


def test_uncertainty_learns_each_task_to_unit_loss():
    unc = weighting("uncertainty")
    optimizer = torch.optim.SGD(unc.parameters(), lr=0.1)
    values = [4.0, 1.0, 0.25]
    for _ in range(400):
        optimizer.zero_grad()
        unc(losses(*values)).backward()
        optimizer.step()
    # optimum of exp(-s) L + s is s = log L: weight 1 / L
    assert unc.log_vars.detach().tolist() == pytest.approx([math.log(v) for v in values], abs=1e-3)
    assert list(unc.weights().values()) == pytest.approx([1 / v for v in values], rel=1e-3)


def test_uncertainty_state_is_restored_and_switched_off_tasks_stay_put():
    unc = weighting("uncertainty", "loss.task_weights.category=0.0")
    optimizer = torch.optim.SGD(unc.parameters(), lr=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        unc(losses(2.0, 3.0, 0.5)).backward()
        optimizer.step()
    assert unc.log_vars[0].item() == 0.0 and unc.weights()["category"] == 0.0
    assert unc.log_vars[1].item() != 0.0
    resumed = weighting("uncertainty", "loss.task_weights.category=0.0")
    resumed.load_state_dict(unc.state_dict())
    assert resumed.weights() == unc.weights()


def test_every_weighting_is_registered_and_builds_from_the_config():
    assert {"fixed", "dwa", "uncertainty"} <= set(WEIGHTINGS)
    for name in WEIGHTINGS:
        total = weighting(name)(losses(1.0, 1.0, 1.0))
        assert total.item() == pytest.approx(3.0)   # every strategy starts at weight 1
