"""MultiviewLifter: the lifter contract, a unit-norm embedding blind to 2D position and size, a view-aware head."""

from __future__ import annotations

import pytest
import torch

from components.networks.multiview import MultiviewLifter, normalise_views


def _lifter(**options) -> MultiviewLifter:
    torch.manual_seed(0)
    return MultiviewLifter(channels=32, embedding_dim=16, head_channels=32, **options).eval()


def test_normalise_views_centres_and_scales_each_frame() -> None:
    x = torch.randn(2, 5, 17, 3, dtype=torch.float64)
    out = normalise_views(x)
    assert torch.allclose(out[..., :2].mean(dim=-2), torch.zeros(2, 5, 2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out[..., :2].square().sum(-1).mean(-1), torch.ones(2, 5, dtype=torch.float64))
    assert torch.equal(out[..., 2], x[..., 2])  # scores untouched


def test_embedding_is_unit_norm_and_ignores_2d_position_and_size() -> None:
    lifter = _lifter()
    x = torch.randn(3, 40, 17, 2)
    z = lifter.embed(x)
    assert z.shape == (3, 40 - 27 + 1, 16)
    assert torch.allclose(z.norm(dim=-1), torch.ones(3, 14), atol=1e-6)
    moved = x * 0.4 + torch.tensor([0.3, -0.2])
    assert torch.allclose(lifter.embed(moved), z, atol=1e-5)
    poses = lifter(x)
    assert poses.shape == (3, 14, 17, 3)
    assert not torch.allclose(lifter(moved), poses, atol=1e-3)  # the head sees the view


@pytest.mark.parametrize("causal", [False, True])
def test_strided_twin_and_single_pass_agree(causal) -> None:
    lifter = _lifter(causal=causal)
    x = torch.randn(4, 27, 17, 2)
    poses, embedding = lifter.forward_with_embedding(x, strided=True)
    assert torch.allclose(poses, lifter(x), atol=1e-5)
    assert torch.allclose(embedding, lifter.embed(x), atol=1e-5)
    assert lifter.receptive_field == 27 and lifter.causal == causal


def test_single_frame_encoder_and_bn_momentum() -> None:
    lifter = _lifter(filter_widths=(1, 1, 1))
    assert lifter.receptive_field == 1 and lifter(torch.randn(2, 6, 17, 2)).shape == (2, 6, 17, 3)
    lifter.set_bn_momentum(0.01)
    assert lifter.trunk.expand_bn.momentum == 0.01
