"""Known-value tests for the DSTformer sequence-to-sequence lifter (MotionBERT).

The published Human3.6M configuration is built on the meta device (parameters without storage) to count it; every
other test uses a small configuration.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
import torch
from torch import Tensor

from components.errors import InputError
from components.lifter import Timing, check_lifter
from components.networks.dstformer import AxisAttention, DSTformer

SMALL = {"dim_feat": 16, "dim_rep": 12, "depth": 2, "num_heads": 4, "mlp_ratio": 2, "maxlen": 9}


def small_model(seed: int = 0, **kwargs) -> DSTformer:
    torch.manual_seed(seed)
    return DSTformer(**{**SMALL, **kwargs}).eval()


def clips(batch: int, frames: int, joints: int = 17, features: int = 3, seed: int = 1) -> Tensor:
    return torch.randn(batch, frames, joints, features, generator=torch.Generator().manual_seed(seed))


def test_published_configuration_has_the_published_parameter_count():
    with torch.device("meta"):
        model = DSTformer(17, 17, 3, dim_feat=512, dim_rep=512, depth=5, num_heads=8, mlp_ratio=2, maxlen=243)
    per_module = Counter()
    for name, parameter in model.named_parameters():
        per_module[name.split(".")[0]] += parameter.numel()
    block = 2 * (2 * 512 + (512 * 1536 + 1536) + (512 * 512 + 512) + 2 * 512 + (512 * 1024 + 1024) + (1024 * 512 + 512))
    assert per_module == {
        "joints_embed": 3 * 512 + 512,
        "pos_embed": 17 * 512,
        "temp_embed": 243 * 512,
        "blocks_st": 5 * block,
        "blocks_ts": 5 * block,
        "ts_attn": 5 * (1024 * 2 + 2),
        "norm": 2 * 512,
        "pre_logits": 512 * 512 + 512,
        "head": 512 * 3 + 3,
    }
    assert sum(per_module.values()) == 42_466_317


def test_state_dict_uses_the_published_names_and_shapes():
    with torch.device("meta"):
        state = DSTformer().state_dict()
    expected = {
        "joints_embed.weight": (512, 3),
        "pos_embed": (1, 17, 512),
        "temp_embed": (1, 243, 1, 512),
        "blocks_st.4.attn_s.qkv.weight": (1536, 512),
        "blocks_ts.0.attn_t.proj.weight": (512, 512),
        "blocks_ts.2.mlp_t.fc1.weight": (1024, 512),
        "blocks_st.1.norm2_s.weight": (512,),
        "ts_attn.3.weight": (2, 1024),
        "norm.weight": (512,),
        "pre_logits.fc.weight": (512, 512),
        "head.weight": (3, 512),
    }
    assert {key: tuple(state[key].shape) for key in expected} == expected
    assert not any(key.startswith("joint_map") for key in state)


def test_follows_the_lifter_contract_with_one_output_per_input_frame():
    model = small_model()
    assert check_lifter(model) == Timing(receptive_field=1, causal=False)
    assert model.timing.pad_before == model.timing.pad_after == 0


@pytest.mark.parametrize(("frames", "joints_out"), [(1, 17), (5, 17), (8, 16)])
def test_every_frame_comes_out(frames: int, joints_out: int):
    model = small_model(num_joints_out=joints_out)
    assert model(clips(2, frames)).shape == (2, frames, joints_out, 3)
    assert model.features(clips(2, frames)).shape == (2, frames, 17, SMALL["dim_rep"])


def test_clip_longer_than_maxlen_is_refused_naming_both():
    with pytest.raises(InputError, match=r"maxlen=9.*T=10"):
        small_model()(clips(1, 10))


@pytest.mark.parametrize("shape", [(1, 4, 16, 3), (1, 4, 17, 4), (1, 4, 17, 1), (4, 17, 3)])
def test_wrong_joints_or_features_are_refused_naming_the_shape(shape: tuple[int, ...]):
    with pytest.raises(InputError, match=r"J_in=17, F=3 or 2.*" + re.escape(str(shape))):
        small_model()(torch.zeros(shape))


def test_a_model_with_scores_takes_2d_without_them_as_score_one():
    model, x = small_model(), clips(2, 5)
    x[..., 2] = 1.0
    with torch.no_grad():
        assert torch.equal(model(x[..., :2]), model(x))
    with pytest.raises(InputError, match=r"F=2\)"):
        small_model(in_features=2)(clips(1, 4))


def test_output_scale_multiplies_the_pose_and_must_be_positive():
    x = clips(1, 5)
    with torch.no_grad():
        assert torch.allclose(small_model(output_scale=2.5)(x), 2.5 * small_model()(x))
    with pytest.raises(InputError, match="output_scale must be > 0, got 0"):
        small_model(output_scale=0)


def test_strided_needs_single_frame_windows():
    model = small_model()
    x = clips(2, 1)
    torch.testing.assert_close(model(x, strided=True), model(x))
    with pytest.raises(InputError, match="receptive_field=1"):
        model(clips(2, 3), strided=True)


def test_batch_permutation_permutes_the_output_and_clips_are_independent():
    model, x = small_model(), clips(4, 6)
    out = model(x)
    order = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(model(x[order]), out[order], atol=1e-6, rtol=0)
    torch.testing.assert_close(model(x[1:2]), out[1:2], atol=1e-6, rtol=0)


def test_every_output_frame_sees_the_whole_clip():
    """Why ``receptive_field = 1`` is window arithmetic, not a statement of dependence."""
    model, x = small_model(), clips(1, 6)
    changed = x.clone()
    changed[:, -1] += 1.0
    assert not torch.allclose(model(changed)[:, 0], model(x)[:, 0])


def test_temporal_embedding_is_sliced_to_the_clip():
    model, x = small_model(), clips(2, 5)
    manual = model.joints_embed(x) + model.pos_embed[:, None] + model.temp_embed[:, :5]
    torch.testing.assert_close(model.tokens(x), manual)
    out = model(x)
    with torch.no_grad():
        model.temp_embed[:, 5:] = 1e6  # rows for frames the clip does not have
    torch.testing.assert_close(model(x), out)
    with torch.no_grad():
        model.temp_embed[:, 4] += 1.0
    assert not torch.allclose(model(x), out)


def test_fusion_weights_are_a_softmax_per_token_and_weigh_the_streams():
    model, x = small_model(), clips(2, 5)
    with torch.no_grad():  # non-zero logits, so the weights are not the initial halves
        torch.nn.init.normal_(model.ts_attn[0].weight)
        torch.nn.init.normal_(model.ts_attn[0].bias)
    tokens = model.tokens(x)
    x_st, x_ts = model.blocks_st[0](tokens), model.blocks_ts[0](tokens)
    weights = model.fusion_weights(0, x_st, x_ts)
    assert weights.shape == (2, 5, 17, 2)
    assert (weights > 0).all() and not torch.allclose(weights, torch.full_like(weights, 0.5))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5, 17))
    torch.testing.assert_close(model.fuse(0, x_st, x_ts), weights[..., :1] * x_st + weights[..., 1:] * x_ts)


def test_forward_fuses_every_layer_through_ts_attn():
    model, logits = small_model(), []
    hooks = [fuse.register_forward_hook(lambda _, __, out: logits.append(out)) for fuse in model.ts_attn]
    model(clips(2, 5))
    for hook in hooks:
        hook.remove()
    assert [tuple(out.shape) for out in logits] == [(2, 5, 17, 2)] * SMALL["depth"]


def test_fusion_starts_at_equal_weights_and_averages_without_att_fuse():
    model, x = small_model(), clips(1, 3)
    tokens = model.tokens(x)
    x_st, x_ts = model.blocks_st[0](tokens), model.blocks_ts[0](tokens)
    torch.testing.assert_close(model.fusion_weights(0, x_st, x_ts), torch.full((1, 3, 17, 2), 0.5))
    averaged = small_model(att_fuse=False)
    assert not hasattr(averaged, "ts_attn")
    torch.testing.assert_close(averaged.fuse(0, x_st, x_ts), (x_st + x_ts) / 2)


def explicit_attention(module: AxisAttention, x: Tensor) -> Tensor:
    """softmax(Q K^T / sqrt(d)) V per head with explicit matrix products, then ``proj``, on ``(B, T, J, C)``."""
    tokens = x.transpose(1, 2) if module.over == "frames" else x
    heads, channels = module.num_heads, x.shape[-1]
    size = channels // heads
    q, k, v = module.qkv(tokens).split(channels, dim=-1)
    q, k, v = (t.unflatten(-1, (heads, size)).transpose(-2, -3) for t in (q, k, v))  # (..., heads, N, d)
    probabilities = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(size), dim=-1)
    out = module.proj((probabilities @ v).transpose(-2, -3).flatten(-2))
    return out.transpose(1, 2) if module.over == "frames" else out


@pytest.mark.parametrize("over", ["joints", "frames"])
def test_scaled_dot_product_attention_equals_the_explicit_formula(over: str):
    torch.manual_seed(0)
    module = AxisAttention(dim=8, num_heads=2, over=over, attention_dropout=0.0, dropout=0.0).eval()
    x = torch.randn(2, 5, 4, 8)
    torch.testing.assert_close(module(x), explicit_attention(module, x), atol=1e-5, rtol=0)


def test_attention_over_joints_keeps_frames_apart_and_over_frames_keeps_joints_apart():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 4, 8)
    changed = x.clone()
    changed[:, 0, 0] += 1.0  # frame 0, joint 0
    for over, untouched in (("joints", (slice(None), slice(1, None))), ("frames", (slice(None), slice(None), 1))):
        module = AxisAttention(8, 2, over, 0.0, 0.0).eval()
        torch.testing.assert_close(module(changed)[untouched], module(x)[untouched])


def test_trains_with_dropout_and_drop_path():
    model = small_model(dropout=0.1, attention_dropout=0.1, drop_path=0.2).train()
    model(clips(2, 4)).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    torch.testing.assert_close(model(clips(2, 4)), model(clips(2, 4)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_heads": 3}, "multiple of num_heads=3"), ({"maxlen": 0}, "maxlen"), ({"drop_path": 1.0}, "drop_path")],
)
def test_bad_settings_are_refused(kwargs: dict, message: str):
    with pytest.raises(InputError, match=message):
        DSTformer(**{**SMALL, **kwargs})
