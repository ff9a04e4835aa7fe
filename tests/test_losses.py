"""Per-task losses: reference values, masking (zero loss, exactly zero gradient), validation."""
import math

import pytest
import torch
import torch.nn.functional as F
from timm.loss import AsymmetricLossMultiLabel

from fashioncomp.config import ConfigError, load_config
from fashioncomp.losses import LOSS_KINDS, LOSSES, balanced_class_weights, create_task_losses
from fashioncomp.tasks import Task

CAT = Task("category", "multiclass", 5)
GROUP = Task("group/colour", "multiclass", 4, (0, 1, 2))
ATTR = Task("attributes", "multilabel", 6, tuple(range(3, 9)))
FREQ = {CAT.name: torch.tensor([0.5, 0.3, 0.1, 0.1, 0.0]), GROUP.name: torch.tensor([0.2, 0.2, 0.1, 0.5]),
        ATTR.name: torch.tensor([0.5, 0.1, 0.02, 0.9, 0.3, 0.0])}
COMBOS = [(name, task) for name in sorted(LOSSES) for task in (CAT, ATTR) if task.kind in LOSS_KINDS[name]]


def make_loss(name: str, task: Task, **cfg):
    loss_cfg = load_config(None)["loss"]
    loss_cfg.update({"category": name, "group": name, "attribute": name, **cfg})
    return create_task_losses(loss_cfg, [task], FREQ)[task.name]


def batch(task: Task, n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, task.size, generator=g) * 3
    if task.is_multiclass:
        target = F.one_hot(torch.randint(0, task.size, (n,), generator=g), task.size).float()
        mask = torch.rand(n, generator=g) < 0.6
    else:
        target = (torch.rand(n, task.size, generator=g) < 0.4).float()
        mask = torch.rand(n, task.size, generator=g) < 0.6
    mask[0] = True
    mask[1] = False
    return logits, target, mask


@pytest.mark.parametrize("name,task", COMBOS, ids=[f"{n}-{t.kind}" for n, t in COMBOS])
def test_masked_entries_give_zero_loss_and_exactly_zero_gradient(name, task):
    loss_fn = make_loss(name, task, label_smoothing=0.1)
    logits, target, mask = batch(task)
    logits.requires_grad_(True)
    loss = loss_fn(logits, target, mask)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    entry_mask = mask[:, None].expand_as(logits) if mask.ndim == 1 else mask
    assert (logits.grad[~entry_mask] == 0).all()          # exactly zero, not just small
    assert (logits.grad[entry_mask] != 0).any()

    # whatever the masked targets and logits are, the loss does not change
    garbage_target = torch.where(entry_mask, target, 1 - target)
    garbage_logits = torch.where(entry_mask, logits.detach(), torch.full_like(logits, 1e4))
    assert loss_fn(garbage_logits, garbage_target, mask) == loss.detach()

    # nothing labelled: zero loss, zero gradient
    logits.grad = None
    empty = loss_fn(logits, target, torch.zeros_like(mask))
    empty.backward()
    assert empty == 0 and (logits.grad == 0).all()


def test_ce_with_label_smoothing_matches_torch():
    logits, target, _ = batch(CAT)
    mask = torch.ones(len(logits), dtype=torch.bool)
    expected = F.cross_entropy(logits, target.argmax(1), label_smoothing=0.2)
    torch.testing.assert_close(make_loss("ce", CAT, label_smoothing=0.2)(logits, target, mask), expected)


def test_balanced_class_weights_are_inverse_frequency_with_unit_mean():
    freq = torch.tensor([0.5, 0.3, 0.2, 0.0])
    w = balanced_class_weights(freq)
    torch.testing.assert_close(w[:3], 1 / (3 * freq[:3]))
    assert (freq * w).sum().item() == pytest.approx(1.0)
    assert w[3] == w.max()                                 # an unseen class gets the largest weight
    assert balanced_class_weights(torch.tensor([0.999999, 1e-6])).max() <= 50


def test_weighted_ce_multiclass_matches_torch_weighted_ce():
    logits, target, _ = batch(GROUP, n=16)
    mask = torch.ones(16, dtype=torch.bool)
    weights = balanced_class_weights(FREQ[GROUP.name])
    expected = F.cross_entropy(logits, target.argmax(1), weight=weights, reduction="none").mean()
    torch.testing.assert_close(make_loss("weighted_ce", GROUP)(logits, target, mask), expected)


def test_weighted_ce_multilabel_balances_positives_and_negatives():
    logits, target, _ = batch(ATTR, n=16)
    mask = torch.ones_like(target, dtype=torch.bool)
    rate = FREQ[ATTR.name].clamp(0.01, 0.99)
    weight = target * 0.5 / rate + (1 - target) * 0.5 / (1 - rate)
    expected = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
    torch.testing.assert_close(make_loss("weighted_ce", ATTR)(logits, target, mask), expected)


def test_weighted_ce_without_frequencies_is_a_clear_error():
    with pytest.raises(ConfigError, match="class frequencies"):
        LOSSES["weighted_ce"](multiclass=True)


def test_focal_reduces_to_ce_and_bce_at_gamma_zero_and_follows_the_formula():
    logits, target, _ = batch(CAT)
    rows = torch.ones(len(logits), dtype=torch.bool)
    torch.testing.assert_close(make_loss("focal", CAT, focal_gamma=0.0)(logits, target, rows),
                               F.cross_entropy(logits, target.argmax(1)))
    p_true = logits.softmax(1).gather(1, target.argmax(1, keepdim=True)).squeeze(1)
    expected = (-(1 - p_true) ** 2 * p_true.log()).mean()
    torch.testing.assert_close(make_loss("focal", CAT, focal_gamma=2.0)(logits, target, rows), expected)

    logits, target, _ = batch(ATTR)
    entries = torch.ones_like(target, dtype=torch.bool)
    torch.testing.assert_close(make_loss("focal", ATTR, focal_gamma=0.0)(logits, target, entries),
                               F.binary_cross_entropy_with_logits(logits, target))
    p = logits.sigmoid()
    p_t = p * target + (1 - p) * (1 - target)
    expected = ((1 - p_t) ** 2 * F.binary_cross_entropy_with_logits(logits, target, reduction="none")).mean()
    torch.testing.assert_close(make_loss("focal", ATTR, focal_gamma=2.0)(logits, target, entries), expected)


def test_asl_equals_timm_on_fully_labelled_batches_and_takes_its_options():
    logits, target, _ = batch(ATTR, n=16)
    entries = torch.ones_like(target, dtype=torch.bool)
    reference = AsymmetricLossMultiLabel(gamma_neg=3.0, gamma_pos=1.0, clip=0.1, reduction="mean")
    loss = make_loss("asl", ATTR, asl_gamma_neg=3.0, asl_gamma_pos=1.0, asl_clip=0.1)
    torch.testing.assert_close(loss(logits, target, entries), reference(logits, target))
    # defaults: gamma_neg 4, gamma_pos 0, clip 0.05
    default = AsymmetricLossMultiLabel(gamma_neg=4.0, gamma_pos=0.0, clip=0.05, reduction="mean")
    torch.testing.assert_close(make_loss("asl", ATTR)(logits, target, entries), default(logits, target))


@pytest.mark.parametrize("key,name", [("category", "asl"), ("category", "bce"), ("group", "asl"),
                                      ("attribute", "ce")])
def test_loss_that_does_not_fit_the_task_kind_is_a_config_error(key, name):
    loss_cfg = load_config(None)["loss"]
    loss_cfg[key] = name
    with pytest.raises(ConfigError, match=f"loss.{key}='{name}' does not apply"):
        create_task_losses(loss_cfg, [CAT, GROUP, ATTR], FREQ)


def test_unknown_loss_is_a_config_error():
    loss_cfg = load_config(None)["loss"]
    loss_cfg["attribute"] = "hinge"
    with pytest.raises(ConfigError, match="unknown loss.attribute 'hinge'"):
        create_task_losses(loss_cfg, [ATTR])


def test_each_task_gets_the_loss_of_its_key():
    loss_cfg = load_config(None, ["loss.category=focal", "loss.group=weighted_ce", "loss.attribute=asl"])["loss"]
    losses = create_task_losses(loss_cfg, [CAT, GROUP, ATTR], FREQ)
    for task, name in [(CAT, "focal"), (GROUP, "weighted_ce"), (ATTR, "asl")]:
        logits, target, mask = batch(task)
        assert losses[task.name](logits, target, mask) == make_loss(name, task)(logits, target, mask)
    # and a loss on mixed (soft) targets stays finite
    logits, target, mask = batch(GROUP)
    soft = 0.3 * target + 0.7 * target.flip(0)
    assert math.isfinite(losses[GROUP.name](logits, soft, mask).item())
