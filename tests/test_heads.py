"""Task heads: output shapes, factorisation and regularisation of `latent`, spatial attention of
`query2label`, gradient flow, and group decoding of their outputs."""
import pytest
import torch

from fashioncomp.config import ConfigError, load_config
from fashioncomp.data.schema import AttributeGroup, Schema
from fashioncomp.models import create_model
from fashioncomp.models.heads import (HEADS, LatentTaskHeads, Query2LabelHeads, create_head,
                                      sine_position_encoding)
from fashioncomp.postprocessing.decode import decode_attributes
from fashioncomp.tasks import attribute_probabilities, build_tasks

SCHEMA = Schema(
    categories=tuple(f"c{i}" for i in range(5)),
    attributes=tuple(f"a{i}" for i in range(9)),
    groups=(AttributeGroup("colour", "multiclass", (0, 1, 2)), AttributeGroup("gender", "multiclass", (3, 4)),
            AttributeGroup("parts", "multilabel", (5, 6))),
)
TASKS = build_tasks(SCHEMA, use_groups=True)  # category, group/colour, group/gender, attributes


def head_config(name: str, **extra):
    cfg = load_config(None, [f"model.head={name}", "model.head_hidden=32", "model.drop_rate=0.1"])["model"]
    cfg.update(extra)
    return cfg


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_head_gives_logits_of_each_task_shape(name, channels_last):
    head = create_head(head_config(name), in_features=24, tasks=TASKS)
    features = torch.randn(3, 24, 4, 5)
    if channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    out = head(features)
    assert list(out) == [t.name for t in TASKS]
    for task in TASKS:
        assert out[task.name].shape == (3, task.size), task.name
        assert torch.isfinite(out[task.name]).all()
    reg = head.regularization()
    assert reg is None or (reg.ndim == 0 and torch.isfinite(reg))


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    head = create_head(head_config(name), in_features=16, tasks=TASKS)
    out = head(torch.randn(4, 16, 3, 3))
    loss = sum(o.pow(2).mean() for o in out.values())
    reg = head.regularization()
    loss = loss + (reg if reg is not None else 0)
    loss.backward()
    for pname, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head_works_in_the_model_on_a_timm_backbone(name):
    cfg = load_config(None, ["model.backbone=test_resnet", f"model.head={name}", "model.head_hidden=32"])["model"]
    model = create_model(cfg, TASKS)
    out = model(torch.randn(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {t.name: (2, t.size) for t in TASKS}


def test_unknown_head_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model.head 'mlp'.*linear"):
        create_head(head_config("mlp"), 8, TASKS)


def test_latent_head_factorises_every_task_weight_and_takes_its_options():
    head = create_head(head_config("latent", latent_k=3, latent_l1=0.5, latent_l2=0.25), 10, TASKS)
    assert isinstance(head, LatentTaskHeads)
    assert head.latent.weight.shape == (3, 10)          # L^T: k latent task vectors over F features
    head.eval()
    features = torch.randn(4, 10, 2, 2)
    pooled = features.mean(dim=(2, 3))
    out = head(features)
    for task in TASKS:
        w = head.task_weight(task.name)                   # W_t = L S_t
        assert w.shape == (10, task.size)
        torch.testing.assert_close(out[task.name], pooled @ w + head.combine[task.name].bias)
        assert torch.linalg.matrix_rank(w) <= 3           # every task lives in the k-dim latent span


def test_latent_regularization_is_l1_on_s_plus_frobenius_on_l():
    head = LatentTaskHeads(6, TASKS, latent_k=4, latent_l1=0.5, latent_l2=0.25)
    s_l1 = sum(head.combine[t.name].weight.abs().sum() for t in TASKS)
    l_fro = head.latent.weight.pow(2).sum()
    torch.testing.assert_close(head.regularization(), 0.5 * s_l1 + 0.25 * l_fro)
    assert LatentTaskHeads(6, TASKS, latent_l1=0.0, latent_l2=0.0).regularization() is None
    with pytest.raises(ConfigError, match="latent_k"):
        LatentTaskHeads(6, TASKS, latent_k=0)


def test_sine_position_encoding_distinguishes_every_position():
    pos = sine_position_encoding(3, 4, 16, torch.device("cpu"))
    assert pos.shape == (16, 3, 4)
    flat = pos.flatten(1).t()                             # [H*W, d]
    assert torch.cdist(flat, flat).add(torch.eye(12) * 10).min() > 1e-3
    assert pos.abs().max() <= 1.0
    with pytest.raises(ConfigError, match="divisible by 4"):
        sine_position_encoding(2, 2, 18, torch.device("cpu"))


def test_query2label_attends_over_space_unlike_pooling_heads():
    torch.manual_seed(0)
    features = torch.randn(2, 8, 3, 3)
    shuffled = features.flatten(2)[:, :, torch.randperm(9)].view(2, 8, 3, 3)
    q2l = Query2LabelHeads(8, TASKS, hidden=16, decoder_layers=2, decoder_heads=2).eval()
    linear = create_head(head_config("linear"), 8, TASKS).eval()
    assert len(q2l.decoder.layers) == 2 and q2l.queries.shape == (len(TASKS), 16)
    # global pooling forgets where things are; the position-encoded decoder does not
    torch.testing.assert_close(linear(features)["category"], linear(shuffled)["category"])
    assert not torch.allclose(q2l(features)["category"], q2l(shuffled)["category"])
    with pytest.raises(ConfigError, match="decoder_heads"):
        Query2LabelHeads(8, TASKS, hidden=16, decoder_heads=3)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_group_decoding_of_head_outputs_gives_at_most_one_attribute_per_group(name):
    torch.manual_seed(1)
    head = create_head(head_config(name), 12, TASKS).eval()
    with torch.no_grad():
        logits = {k: v * 20 for k, v in head(torch.randn(64, 12, 2, 2)).items()}  # spread probabilities
        proba = attribute_probabilities(logits, TASKS, SCHEMA.num_attributes).numpy()
    for group in SCHEMA.multiclass_groups:
        assert (proba[:, list(group.indices)].sum(axis=1) <= 1 + 1e-5).all()
    for threshold in (0.0, 0.5):
        pred = decode_attributes(proba, threshold, SCHEMA.multiclass_groups)
        for group in SCHEMA.multiclass_groups:
            assert pred[:, list(group.indices)].sum(axis=1).max() <= 1
    # at threshold 0 every multilabel attribute is on, so the groups' cap is the decoding's doing
    assert decode_attributes(proba, 0.0, SCHEMA.multiclass_groups)[:, [5, 6, 7, 8]].all()
    assert decode_attributes(proba, 0.5, SCHEMA.multiclass_groups)[:, :3].any()  # groups are not just empty
