"""Task heads: output shapes, factorisation, regularisation and alternating training of `latent`,
the source's dense stacks, `query2label`'s spatial attention and source settings, gradient flow, and
group decoding of their outputs."""
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


pytestmark = pytest.mark.usefixtures("one_thread")


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


# --- the source's dense stacks ---------------------------------------------------------------------

def _linear_widths(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_dense_stacks_default_to_one_hidden_layer_with_unchanged_parameter_names():
    shared = create_head(head_config("shared_mlp"), 24, TASKS)
    assert _linear_widths(shared.shared) == [(24, 32)]
    assert {"shared.0.weight", "heads.category.weight"} <= set(shared.state_dict())
    private = create_head(head_config("private_mlp"), 24, TASKS)
    assert _linear_widths(private.heads["category"]) == [(24, 32), (32, 5)]
    assert {"heads.category.0.0.weight", "heads.category.1.weight"} <= set(private.state_dict())


def test_source_dense_stacks_are_two_layers_sized_by_label_count_with_dropout_half():
    n_all = sum(t.size for t in TASKS)                    # 5 + 4 + 3 + 4 outputs served by the shared stack
    source = dict(mlp_layers=2, mlp_dropout=0.5)
    shared = create_head(head_config("shared_mlp", mlp_width_per_label=16, **source), 24, TASKS)
    assert _linear_widths(shared.shared) == [(24, 16 * n_all), (16 * n_all, 16 * n_all)]
    assert all(shared.heads[t.name].in_features == 16 * n_all for t in TASKS)
    private = create_head(head_config("private_mlp", mlp_width_per_label=8, **source), 24, TASKS)
    for task in TASKS:                                    # each task's stack: 8n wide, n = its own outputs
        n = task.size
        assert _linear_widths(private.heads[task.name]) == [(24, 8 * n), (8 * n, 8 * n), (8 * n, n)]
    for head in (shared, private):
        stack_drops = [m.p for name, m in head.named_modules() if isinstance(m, torch.nn.Dropout) and name != "dropout"]
        assert stack_drops and set(stack_drops) == {0.5}
        assert head.dropout.p == 0.1                      # the input dropout stays model.drop_rate


# --- Query2Label as its source describes it ---------------------------------------------------------

def test_query2label_source_settings():
    head = create_head(head_config("query2label", encoder_layers=1, decoder_layers=2, decoder_heads=4,
                                   decoder_ffn=96, decoder_dropout=0.3, decoder_queries="group"), 24, TASKS)
    assert len(head.encoder.layers) == 1 and len(head.decoder.layers) == 2
    for layer in [*head.encoder.layers, *head.decoder.layers]:
        assert layer.linear1.out_features == 96 and layer.dropout.p == 0.3
        assert layer.self_attn.num_heads == 4 and layer.self_attn.embed_dim == 32
    # one query per group: category, colour, gender, and each of the 4 ungrouped attributes
    assert head.queries.shape == (3 + 4, 32)
    assert head.heads["attributes"].weight.shape == (4, 32)   # each attribute reads its own query
    out = head.eval()(torch.randn(2, 24, 3, 3))
    assert {k: tuple(v.shape) for k, v in out.items()} == {t.name: (2, t.size) for t in TASKS}


def test_query2label_defaults_are_unchanged():
    head = create_head(head_config("query2label"), 24, TASKS)
    assert head.encoder is None and len(head.decoder.layers) == 1 and head.queries.shape == (len(TASKS), 32)
    layer = head.decoder.layers[0]
    assert layer.linear1.out_features == 64 and layer.dropout.p == 0.1   # 2 x head_hidden, model.drop_rate
    assert not any(k.startswith("encoder.") for k in head.state_dict())


def test_query2label_group_queries_answer_each_ungrouped_attribute_from_its_own_query():
    torch.manual_seed(0)
    head = create_head(head_config("query2label", decoder_queries="group"), 16, TASKS).eval()
    features = torch.randn(2, 16, 3, 3)
    decoded = {}
    head.decoder.register_forward_hook(lambda module, args, out: decoded.setdefault("out", out))
    logits = head(features)["attributes"]
    name, start, count, each = head.slots[-1]
    assert (name, count, each) == ("attributes", 4, True)
    attribute_queries = decoded["out"][:, start:start + count]
    expected = (attribute_queries * head.heads["attributes"].weight).sum(-1) + head.heads["attributes"].bias
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize("key,value,allowed", [("decoder_queries", "label", "task, group"),
                                               ("latent_alternate", "batch", "off, epoch, step")])
def test_unknown_head_option_values_name_the_key_and_the_choices(key, value, allowed):
    head = "query2label" if key.startswith("decoder") else "latent"
    with pytest.raises(ConfigError, match=f"model.{key} must be one of {allowed}, got '{value}'"):
        create_head(head_config(head, **{key: value}), 16, TASKS)


# --- latent head: alternating L and S ---------------------------------------------------------------

def _latent_grads(head, epoch, step):
    head.zero_grad(set_to_none=True)
    out = head(torch.randn(4, 16, 2, 2))
    (sum(o.pow(2).mean() for o in out.values()) + head.regularization()).backward()
    head.schedule_gradients(epoch, step)
    s_grads = [p.grad is not None for p in head.combine.parameters()]
    return head.latent.weight.grad is not None, all(s_grads) if all(s_grads) or not any(s_grads) else None


@pytest.mark.parametrize("mode,schedule", [
    ("off", {(0, 0): (True, True), (1, 1): (True, True)}),
    ("epoch", {(0, 0): (True, False), (0, 1): (True, False), (1, 0): (False, True), (2, 7): (True, False)}),
    ("step", {(0, 0): (True, False), (0, 1): (False, True), (3, 2): (True, False), (3, 5): (False, True)}),
])
def test_latent_alternation_gives_only_the_scheduled_factor_a_gradient(mode, schedule):
    torch.manual_seed(0)
    head = create_head(head_config("latent", latent_alternate=mode), 16, TASKS)
    for (epoch, step), (l_trains, s_trains) in schedule.items():
        assert _latent_grads(head, epoch, step) == (l_trains, s_trains), (epoch, step)


def test_latent_alternation_by_epoch_through_the_training_loop():
    import numpy as np

    from fashioncomp.training.train import create_optimisation, train_one_epoch

    torch.manual_seed(0)
    cfg = load_config(None, ["model.backbone=test_resnet", "model.head=latent", "model.latent_alternate=epoch",
                             "model.head_hidden=32", "train.ema=false"])
    cfg["train"]["epochs"] = 2
    model = create_model(cfg["model"], TASKS, image_size=32)
    freq = {t.name: torch.full((t.size,), 1.0 / t.size) for t in TASKS}
    opt = create_optimisation(cfg, model, TASKS, freq, 2, torch.device("cpu"), None)
    rng = np.random.default_rng(0)

    def batch():
        targets = {t.name: torch.eye(t.size)[torch.randint(t.size, (4,))] for t in TASKS}
        masks = {t.name: torch.ones(4, dtype=torch.bool) if t.is_multiclass else torch.ones(4, t.size, dtype=torch.bool)
                 for t in TASKS}
        return {"image": torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8), "targets": targets,
                "masks": masks, "row": torch.arange(4)}

    def snapshot():
        head = model.head
        return head.latent.weight.detach().clone(), [p.detach().clone() for p in head.combine.parameters()]

    for epoch, trains in ((0, "L"), (1, "S")):
        l_before, s_before = snapshot()
        stem_before = model.backbone.conv1[0].weight.detach().clone()
        train_one_epoch(opt, [batch(), batch()], epoch, rng)
        l_after, s_after = snapshot()
        assert torch.equal(l_before, l_after) == (trains == "S"), epoch
        assert all(torch.equal(a, b) for a, b in zip(s_before, s_after)) == (trains == "L"), epoch
        assert not torch.equal(stem_before, model.backbone.conv1[0].weight)   # the backbone trains throughout
