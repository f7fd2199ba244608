"""Importing published MotionBERT pose checkpoints: both key layouts, the architecture read from the shapes,
and the published computation reproduced by the imported model (checked against an explicit formula)."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from components.errors import InputError, MissingKeyError
from components.networks.dstformer import DSTformer
from components.networks.motionbert import dstformer_config, load_motionbert
from components.networks.published import UntrustedCheckpointError

SMALL = {"dim_feat": 16, "dim_rep": 12, "depth": 2, "num_heads": 4, "mlp_ratio": 2, "maxlen": 9}
OURS_TO_MMPOSE = (  # the MMPose names, written out independently of the importer; the first match renames
    (r"^pos_embed$", "backbone.spat_embed"),
    (r"^ts_attn\.", "backbone.attn_regress."),
    (r"^pre_logits\.", "head.pre_logits."),
    (r"^head\.", "head.fc."),
    (r"^", "backbone."),
)
MLP_LAYERS = {"fc1": "0", "fc2": "2"}  # MMPose's MLP is a Sequential: Linear, GELU, Linear, Dropout


def random_weights(seed: int = 0, **kwargs) -> tuple[DSTformer, dict[str, Tensor]]:
    """A small DSTformer whose every tensor is random (fusion and LayerNorms included), and its state_dict."""
    torch.manual_seed(seed)
    model = DSTformer(**{**SMALL, **kwargs}).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model, model.state_dict()


def to_mmpose(state: dict[str, Tensor]) -> dict[str, Tensor]:
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"\.mlp_([st])\.(fc[12])\.", lambda m: f".mlp_{m[1]}.{MLP_LAYERS[m[2]]}.", key)
        pattern, replacement = next(rule for rule in OURS_TO_MMPOSE if re.search(rule[0], key))
        renamed[re.sub(pattern, replacement, key)] = value
    return renamed


def published_forward(w: dict[str, Tensor], x: Tensor, heads: int) -> Tensor:
    """The published DSTformer, written token by token over MMPose-named weights: ``(B, T, J, 3)`` -> same."""
    channels = w["backbone.joints_embed.weight"].shape[0]

    def linear(h: Tensor, name: str) -> Tensor:
        return h @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def norm(h: Tensor, name: str) -> Tensor:
        return F.layer_norm(h, (channels,), w[f"{name}.weight"], w[f"{name}.bias"], eps=1e-6)

    def attention(h: Tensor, name: str, temporal: bool) -> Tensor:
        tokens = h.transpose(1, 2) if temporal else h  # (B, T, J, C) -> tokens attend along dim -2
        q, k, v = linear(tokens, f"{name}.qkv").unflatten(-1, (3, heads, channels // heads)).unbind(-3)
        q, k, v = (t.transpose(-2, -3) for t in (q, k, v))  # (..., heads, N, d)
        weights = (q @ k.transpose(-1, -2) / math.sqrt(channels // heads)).softmax(-1)
        out = linear((weights @ v).transpose(-2, -3).flatten(-2), f"{name}.proj")
        return out.transpose(1, 2) if temporal else out

    def block(h: Tensor, name: str) -> Tensor:
        for axis in name.split("_")[-1][:2]:  # blocks_st: s then t
            h = h + attention(norm(h, f"{name}.norm1_{axis}"), f"{name}.attn_{axis}", temporal=axis == "t")
            mlp = f"{name}.mlp_{axis}"
            h = h + linear(F.gelu(linear(norm(h, f"{name}.norm2_{axis}"), f"{mlp}.0")), f"{mlp}.2")
        return h

    frames = x.shape[1]
    h = linear(x, "backbone.joints_embed") + w["backbone.spat_embed"][:, None] + w["backbone.temp_embed"][:, :frames]
    layers = len({key.split(".")[2] for key in w if key.startswith("backbone.blocks_st.")})
    for i in range(layers):
        st = block(h, f"backbone.blocks_st.{i}")
        ts = block(h, f"backbone.blocks_ts.{i}")
        alpha = linear(torch.cat([st, ts], -1), f"backbone.attn_regress.{i}").softmax(-1)
        h = st * alpha[..., :1] + ts * alpha[..., 1:]
    return linear(torch.tanh(linear(norm(h, "backbone.norm"), "head.pre_logits.fc")), "head.fc")


def clips(frames: int = 7, seed: int = 1) -> Tensor:
    return torch.randn(2, frames, 17, 3, generator=torch.Generator().manual_seed(seed))


def test_mmpose_checkpoint_computes_the_published_model(tmp_path):
    _, state = random_weights()
    path = tmp_path / "motionbert_h36m.pth"
    weights = to_mmpose(state)
    torch.save({"meta": {"epoch": 120}, "state_dict": weights}, path)
    model, origin = load_motionbert(path, num_heads=4, output_scale=1.0)
    x = clips()
    with torch.no_grad():
        expected = published_forward(weights, x, heads=4)
        assert origin == "mmpose" and torch.allclose(model(x), expected, atol=1e-5)
        assert torch.allclose(load_motionbert(path, 4, output_scale=2.0)[0](x), 2 * expected, atol=1e-5)


def test_official_checkpoint_with_dataparallel_prefix_loads_every_weight(tmp_path):
    source, state = random_weights(seed=3, maxlen=11)
    path = tmp_path / "best_epoch.bin"
    torch.save({"epoch": 9, "lr": 2e-4, "model_pos": {f"module.{k}": v for k, v in state.items()}}, path)
    model, origin = load_motionbert(path, num_heads=4, output_scale=1.0)
    assert origin == "official" and model.maxlen == 11
    x = clips(frames=11)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_the_architecture_is_read_from_the_shapes():
    _, state = random_weights(mlp_ratio=3, dim_rep=20, depth=3)
    assert dstformer_config(state, num_heads=4) == {
        "num_joints_in": 17, "num_joints_out": 17, "in_features": 3, "dim_feat": 16, "dim_rep": 20, "depth": 3,
        "num_heads": 4, "mlp_ratio": 3.0, "maxlen": 9, "att_fuse": True,
    }  # fmt: skip
    _, averaged = random_weights(att_fuse=False)
    assert dstformer_config(averaged, num_heads=4)["att_fuse"] is False


def test_another_architecture_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "videopose3d.bin"
    torch.save(
        {"model_pos": {"expand_conv.weight": torch.zeros(8, 34, 3), "shrink.weight": torch.zeros(51, 8, 1)}}, path
    )
    with pytest.raises(MissingKeyError, match=r"videopose3d.bin: lacks 'joints_embed.weight': not a DSTformer"):
        load_motionbert(path)
    torch.save({"optimizer": {}}, path)
    with pytest.raises(
        MissingKeyError, match=r"'model_pos' \(official\) or 'state_dict' \(MMPose\), found \['optimizer'\]"
    ):
        load_motionbert(path)


def test_extra_missing_or_misshapen_weights_are_listed(tmp_path):
    _, state = random_weights()
    path = tmp_path / "edited.bin"
    edited = {**state, "dec_head.weight": torch.zeros(3)}
    del edited["blocks_ts.1.attn_t.proj.bias"]
    torch.save({"model_pos": edited}, path)
    with pytest.raises(InputError, match=r"missing keys blocks_ts.1.attn_t.proj.bias, unexpected keys dec_head.weight"):
        load_motionbert(path, num_heads=4)
    torch.save({"model_pos": {**state, "blocks_st.0.attn_s.qkv.weight": torch.zeros(48, 15)}}, path)
    with pytest.raises(InputError, match=r"blocks_st.0.attn_s.qkv.weight has shape \(48, 15\).*\(48, 16\)"):
        load_motionbert(path, num_heads=4)
    with pytest.raises(InputError, match="dim_feat=16 must be a multiple of num_heads=3"):
        load_motionbert(tmp_path / "edited.bin", num_heads=3)


def test_pickled_objects_need_trust(tmp_path):
    _, state = random_weights()
    path = tmp_path / "with_objects.bin"
    torch.save({"model_pos": state, "args": re.compile("x")}, path)
    with pytest.raises(UntrustedCheckpointError, match="--trust-pickle"):
        load_motionbert(path, num_heads=4)
    assert load_motionbert(path, num_heads=4, trust_pickle=True)[1] == "official"
