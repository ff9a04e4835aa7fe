"""Every timm backbone family with every head: convnets (NCHW), NHWC models (Swin) and token models
with prefix tokens (ViT, DeiT) read through what each timm model declares; sizes other than the
model's default; clear errors for what cannot work; the loud local checkpoint."""
from pathlib import Path

import pytest
import torch
import yaml

from fashioncomp.config import load_config
from fashioncomp.data.schema import AttributeGroup, Schema
from fashioncomp.errors import DataWarning
from fashioncomp.models import ModelConfigError, create_model
from fashioncomp.models.features import Features
from fashioncomp.models.heads import HEADS
from fashioncomp.tasks import build_tasks

REPO = Path(__file__).resolve().parents[1]
SCHEMA = Schema(
    categories=tuple(f"c{i}" for i in range(5)),
    attributes=tuple(f"a{i}" for i in range(9)),
    groups=(AttributeGroup("colour", "multiclass", (0, 1, 2)), AttributeGroup("gender", "multiclass", (3, 4))),
)
TASKS = build_tasks(SCHEMA, use_groups=True)  # category, group/colour, group/gender, attributes (4 outputs)

TINY_SWIN = ["model.backbone=swin_tiny_patch4_window7_224",
             "model.backbone_kwargs={embed_dim: 16, depths: [1, 1, 1, 1], num_heads: [1, 1, 1, 1]}"]
TINY_DEIT = ["model.backbone=deit_tiny_distilled_patch16_224",   # two prefix tokens: class + distillation
             "model.backbone_kwargs={depth: 1, embed_dim: 32, num_heads: 2}"]
# family -> (overrides, image side, layout the reader must pick)
FAMILIES = {
    "resnet": (["model.backbone=test_resnet"], 32, "NCHW"),
    "convnext": (["model.backbone=test_convnext"], 32, "NCHW"),
    "efficientnet": (["model.backbone=test_efficientnet"], 32, "NCHW"),
    "vit": (["model.backbone=test_vit"], 32, "tokens"),
    "deit": (TINY_DEIT, 32, "tokens"),
    "swin": (TINY_SWIN, 64, "NHWC"),
}
HEAD_CASES = {name: [f"model.head={name}"] for name in sorted(HEADS)}
HEAD_CASES["query2label_encoder"] = ["model.head=query2label", "model.encoder_layers=1", "model.decoder_layers=2",
                                     "model.decoder_queries=group"]


pytestmark = pytest.mark.usefixtures("one_thread")


def build(overrides, side, tasks=TASKS):
    cfg = load_config(None, [*overrides, "model.head_hidden=32", "model.drop_rate=0.0"])["model"]
    return create_model(cfg, tasks, image_size=side)


@pytest.mark.parametrize("head", sorted(HEAD_CASES))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_head_trains_on_every_backbone_family(family, head):
    torch.manual_seed(0)
    overrides, side, layout = FAMILIES[family]
    model = build(overrides + HEAD_CASES[head], side).train()
    assert model.reader.layout == layout
    out = model(torch.randn(2, 3, side, side))
    assert {k: tuple(v.shape) for k, v in out.items()} == {t.name: (2, t.size) for t in TASKS}
    sum(v.float().pow(2).mean() for v in out.values()).backward()
    # the first layer of the backbone (stem conv / patch embedding) gets a gradient: it flows all the way
    stem_name, stem = next((n, p) for n, p in model.backbone.named_parameters() if p.ndim == 4)
    assert stem.grad is not None and stem.grad.abs().sum() > 0, stem_name
    for name, param in model.head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def _inputs(side):
    torch.manual_seed(1)
    return torch.randn(2, 3, side, side)


def test_token_models_drop_their_prefix_tokens_and_keep_the_patch_grid():
    model = build(TINY_DEIT, 32).eval()
    backbone, x = model.backbone, _inputs(32)
    assert backbone.num_prefix_tokens == 2
    with torch.no_grad():
        features = model.reader(backbone, x)
        tokens = backbone.forward_features(x)                       # [B, 2 + 2*2, C]
        assert features.map.shape == (2, 32, 2, 2)
        # patch token (i, j) is map position (i, j); the class / distillation tokens are not in the map
        torch.testing.assert_close(features.map.flatten(2).transpose(1, 2), tokens[:, 2:])
        torch.testing.assert_close(features.pooled, backbone.forward_head(tokens, pre_logits=True))


def test_nhwc_models_are_read_channels_first():
    model = build(TINY_SWIN, 64).eval()
    x = _inputs(64)
    with torch.no_grad():
        native = model.backbone.forward_features(x)                 # Swin: [B, H, W, C]
        features = model.reader(model.backbone, x)
    assert native.shape[-1] == model.backbone.num_features
    torch.testing.assert_close(features.map, native.permute(0, 3, 1, 2))


def test_pooling_heads_read_the_backbones_own_pooled_vector():
    # ConvNeXt's timm head normalises after pooling; the heads get that vector, not a bare mean
    model = build(["model.backbone=test_convnext"], 32).eval()
    x = _inputs(32)
    with torch.no_grad():
        fmap = model.backbone.forward_features(x)
        features = model.reader(model.backbone, x)
    torch.testing.assert_close(features.pooled, model.backbone.forward_head(fmap, pre_logits=True))
    assert not torch.allclose(features.pooled, fmap.mean(dim=(2, 3)))


@pytest.mark.parametrize("overrides,built,other", [(["model.backbone=test_vit"], 48, 32), (TINY_SWIN, 32, 64)])
def test_vit_and_swin_take_sizes_other_than_their_default(overrides, built, other):
    model = build(overrides + ["model.head=query2label"], built).eval()
    assert model.backbone.pretrained_cfg["input_size"][-1] not in (built, other)   # neither is the default
    for side in (built, other):   # dynamic sizes: progressive resizing feeds smaller images
        out = model(torch.randn(1, 3, side, side))
        assert out["category"].shape == (1, 5)


def test_a_size_the_backbone_cannot_take_is_one_clear_error():
    with pytest.raises(ModelConfigError, match=r"'test_vit'.*40x40 px.*divisible by patch size"):
        build(["model.backbone=test_vit"], 40)


def test_a_head_needing_a_map_on_a_backbone_without_one_is_a_config_error():
    mixer = ["model.backbone=mixer_s16_224"]   # tokens without a prefix-token declaration
    assert build(mixer + ["model.head=linear"], 32).reader.map_channels is None   # pooling heads still work
    with pytest.raises(ModelConfigError, match=r"model.head=query2label reads a spatial feature map.*mixer_s16_224"):
        build(mixer + ["model.head=query2label"], 32)


def test_bad_backbone_kwargs_are_a_config_error():
    with pytest.raises(ModelConfigError, match=r"model.backbone 'test_resnet'.*no_such_kwarg"):
        build(["model.backbone=test_resnet", "model.backbone_kwargs={no_such_kwarg: 1}"], 32)


def test_colour_channels_reach_both_the_map_and_the_pooled_vector():
    features = Features(torch.randn(2, 8, 3, 3), torch.randn(2, 6))
    extra = torch.randn(2, 4)
    joined = features.with_channels(extra)
    assert joined.map.shape == (2, 12, 3, 3) and joined.pooled.shape == (2, 10)
    torch.testing.assert_close(joined.map[:, 8:, 1, 2], extra)
    model = build(["model.backbone=test_vit", "model.colour_bins=4", "model.colour_dim=8",
                   "model.head=query2label"], 32)
    assert model.head.project.in_channels == 64 + 8
    assert model(torch.randn(2, 3, 32, 32))["attributes"].shape == (2, 4)


# --- model.checkpoint: loaded loudly ---------------------------------------------------------------

def test_checkpoint_prints_what_it_loaded_and_warns_that_pretrained_scores_zero(tmp_path, capsys):
    source = build(["model.backbone=test_resnet"], 32).backbone
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    with pytest.warns(DataWarning, match="scores a submission that uses pretrained weights as 0"):
        model = build(["model.backbone=test_resnet", f"model.checkpoint={path}"], 32)
    n = len(source.state_dict())
    assert f"model.checkpoint: loaded {path} into backbone 'test_resnet': {n} of its {n} tensors matched" \
        in capsys.readouterr().out
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)


def test_a_fashioncomp_checkpoint_loads_its_backbone_part(tmp_path, capsys):
    trained = build(["model.backbone=test_resnet"], 32)
    path = tmp_path / "best.pt"
    torch.save({"model": trained.state_dict(), "epoch": 3}, path)
    with pytest.warns(DataWarning):
        model = build(["model.backbone=test_resnet", f"model.checkpoint={path}"], 32)
    for key, value in trained.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)
    assert "tensors matched" in capsys.readouterr().out


@pytest.mark.parametrize("content,message", [
    ("other_backbone", "none of the .* tensors of .* fits backbone 'test_resnet'"),
    ("garbage", "is not a readable checkpoint"),
])
def test_a_checkpoint_that_does_not_fit_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    if content == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        torch.save(build(["model.backbone=test_vit"], 32).backbone.state_dict(), path)
    with pytest.raises(ModelConfigError, match=message):
        build(["model.backbone=test_resnet", f"model.checkpoint={path}"], 32)


def test_no_shipped_recipe_or_variant_uses_pretrained_weights():
    recipes = sorted(p for p in (REPO / "configs").glob("*.yaml") if p.name != "ablation_variants.yaml")
    assert recipes
    for recipe in recipes:
        model = load_config(recipe)["model"]
        assert model["checkpoint"] is None and model["pretrained"] is False, recipe.name
    variants = yaml.safe_load((REPO / "configs" / "ablation_variants.yaml").read_text())
    for name, overrides in variants.items():
        model = load_config(None, overrides)["model"]
        assert model["checkpoint"] is None and model["pretrained"] is False, name
