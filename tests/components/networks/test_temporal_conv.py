"""Known-value tests for the temporal convolution lifter and its strided single-frame twin.

The fast paths (channels-last matrix multiplies, folded BatchNorm) are checked against a plain ``F.conv1d``
formulation of VideoPose3D written here from the same state_dict.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from components.networks.temporal_conv import TemporalConvLifter, _dropout_mask

EPS = 1e-5  # BatchNorm1d's default, used by the reference below


def conv1d_reference(
    params: dict[str, Tensor],
    widths: tuple[int, ...],
    causal: bool,
    keypoints_2d: Tensor,
    strided: bool = False,
    training: bool = False,
) -> Tensor:
    """VideoPose3D written with ``F.conv1d`` on ``(B, C, T)``; dropout off. Updates running stats when training."""
    batch, frames = keypoints_2d.shape[:2]

    def unit(h: Tensor, conv: str, bn: str, dilation: int) -> Tensor:
        width = params[f"{conv}.weight"].shape[-1]
        if strided:
            h = F.conv1d(h, params[f"{conv}.weight"], stride=width)
        else:
            h = F.conv1d(h, params[f"{conv}.weight"], dilation=dilation)
        stats = (params[f"{bn}.running_mean"], params[f"{bn}.running_var"])
        h = F.batch_norm(h, *stats, params[f"{bn}.weight"], params[f"{bn}.bias"], training, 0.1, EPS)
        return F.relu(h)

    x = unit(keypoints_2d.reshape(batch, frames, -1).transpose(1, 2), "expand_conv", "expand_bn", 1)
    dilation = widths[0]
    for block, width in enumerate(widths[1:]):
        if strided:
            residual = x[:, :, (width - 1 if causal else width // 2) :: width]
        else:
            pad = (width - 1) * dilation // 2
            shift = pad if causal else 0
            residual = x[:, :, pad + shift : x.shape[2] - pad + shift]
        h = unit(x, f"layers_conv.{2 * block}", f"layers_bn.{2 * block}", dilation)
        x = residual + unit(h, f"layers_conv.{2 * block + 1}", f"layers_bn.{2 * block + 1}", 1)
        dilation *= width
    out = F.conv1d(x, params["shrink.weight"], params["shrink.bias"]).transpose(1, 2)
    return out.reshape(batch, out.shape[1], -1, 3)


def make_lifter(seed: int = 0, **kwargs) -> TemporalConvLifter:
    """A small lifter with random BatchNorm statistics and affine parameters (so folding them is exercised)."""
    torch.manual_seed(seed)
    kwargs = {"channels": 32, "dropout": 0.0, **kwargs}
    lifter = TemporalConvLifter(**kwargs)
    with torch.no_grad():
        for bn in (lifter.expand_bn, *lifter.layers_bn):
            bn.running_mean.normal_(0.0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.2)
    return lifter


def random_input(lifter: TemporalConvLifter, batch: int, frames: int, seed: int = 1) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, lifter.num_joints_in, lifter.in_features, generator=generator)


def state_copy(lifter: TemporalConvLifter) -> dict[str, Tensor]:
    return {name: value.detach().clone() for name, value in lifter.state_dict().items()}


CONFIGS = [
    pytest.param({}, id="17x2->17"),
    pytest.param({"causal": True}, id="17x2->17-causal"),
    pytest.param({"num_joints_in": 16, "in_features": 3, "num_joints_out": 17}, id="16x3->17"),
    pytest.param({"num_joints_in": 16, "in_features": 3, "num_joints_out": 1, "causal": True}, id="16x3->1-causal"),
    pytest.param({"filter_widths": (3, 5, 1)}, id="widths-3-5-1"),
    pytest.param({"filter_widths": (5, 3), "causal": True}, id="widths-5-3-causal"),
    pytest.param({"filter_widths": (1,)}, id="single-frame"),
]


# ---------------------------------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"filter_widths": (3, 3, 3)}, 8_555_571),
        ({"filter_widths": (3, 3, 3, 3)}, 12_753_971),
        ({"filter_widths": (3, 3, 3, 3, 3)}, 16_952_371),
        ({"filter_widths": (3, 3, 3, 3, 3), "num_joints_out": 1}, 16_903_171),
        ({"filter_widths": (3, 3, 3, 3, 3), "in_features": 3}, 17_004_595),
    ],
)
def test_parameter_counts_match_videopose3d(kwargs: dict, expected: int) -> None:
    lifter = TemporalConvLifter(**kwargs)  # 17 joints, 2 features, 1024 channels by default
    assert sum(p.numel() for p in lifter.parameters()) == expected


def test_state_dict_matches_published_243_frame_layout() -> None:
    lifter = TemporalConvLifter(filter_widths=(3, 3, 3, 3, 3))
    bn = [("weight", (1024,)), ("bias", (1024,)), ("running_mean", (1024,)), ("running_var", (1024,))]
    bn += [("num_batches_tracked", ())]
    expected = [(f"expand_bn.{name}", shape) for name, shape in bn]
    expected += [("shrink.weight", (51, 1024, 1)), ("shrink.bias", (51,)), ("expand_conv.weight", (1024, 34, 3))]
    expected += [(f"layers_conv.{i}.weight", (1024, 1024, 3 if i % 2 == 0 else 1)) for i in range(8)]
    expected += [(f"layers_bn.{i}.{name}", shape) for i in range(8) for name, shape in bn]
    assert [(key, tuple(value.shape)) for key, value in lifter.state_dict().items()] == expected
    assert sum(b.numel() for b in lifter.buffers()) == 18_441
    assert lifter.dilations == (1, 3, 9, 27, 81)


@pytest.mark.parametrize(
    ("widths", "causal", "receptive_field", "pad", "shift"),
    [
        ((3, 3, 3), False, 27, 13, 0),
        ((3, 3, 3), True, 27, 13, 13),
        ((3, 3, 7), False, 63, 31, 0),
        ((1,), True, 1, 0, 0),
    ],
)
def test_receptive_field_pad_and_causal_shift(widths, causal, receptive_field, pad, shift) -> None:
    lifter = TemporalConvLifter(filter_widths=widths, channels=8, causal=causal)
    assert (lifter.receptive_field, lifter.timing.pad, lifter.timing.causal_shift) == (receptive_field, pad, shift)


@pytest.mark.parametrize("widths", [(3, 2, 3), (4,), (), (3, 0)])
def test_even_or_empty_filter_widths_are_rejected(widths) -> None:
    with pytest.raises(ValueError, match="odd"):
        TemporalConvLifter(filter_widths=widths, channels=8)


# ------------------------------------------------------------------------------------ equal functions


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_strided_twin_equals_dilated_model_in_eval(kwargs: dict) -> None:
    lifter = make_lifter(**kwargs).eval()
    rf = lifter.receptive_field
    keypoints = random_input(lifter, batch=3, frames=rf + 6)
    with torch.no_grad():
        dilated = lifter(keypoints)
        # Output frame i of the dilated model is the strided twin on input frames [i, i + rf).
        strided = torch.cat([lifter(keypoints[:, i : i + rf], strided=True) for i in range(7)], dim=1)
    assert strided.shape == dilated.shape == (3, 7, lifter.num_joints_out, 3)
    torch.testing.assert_close(strided, dilated, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kwargs", CONFIGS)
@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_eval_paths_equal_conv1d_reference(kwargs: dict, grad: bool) -> None:
    lifter = make_lifter(**kwargs).eval()
    rf = lifter.receptive_field
    params, widths, causal = state_copy(lifter), lifter.filter_widths, lifter.causal
    keypoints = random_input(lifter, batch=2, frames=rf + 9)
    with torch.set_grad_enabled(grad):
        dilated, strided = lifter(keypoints), lifter(keypoints[:, :rf], strided=True)
    with torch.no_grad():
        torch.testing.assert_close(dilated, conv1d_reference(params, widths, causal, keypoints), rtol=0, atol=1e-5)
        expected = conv1d_reference(params, widths, causal, keypoints[:, :rf], strided=True)
        torch.testing.assert_close(strided, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kwargs", CONFIGS)
@pytest.mark.parametrize("strided", [False, True], ids=["dilated", "strided"])
def test_training_forward_and_running_stats_equal_conv1d_reference(kwargs: dict, strided: bool) -> None:
    lifter = make_lifter(**kwargs).train()
    rf = lifter.receptive_field
    params = state_copy(lifter)
    keypoints = random_input(lifter, batch=4, frames=rf if strided else rf + 5)
    out = lifter(keypoints, strided=strided)
    expected = conv1d_reference(params, lifter.filter_widths, lifter.causal, keypoints, strided, training=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for name, value in lifter.state_dict().items():
        if name.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(value, params[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_strided_twin_gradients_reach_every_parameter_and_equal_reference(kwargs: dict) -> None:
    lifter = make_lifter(**kwargs).train()
    rf = lifter.receptive_field
    reference = state_copy(lifter)
    for name, _ in lifter.named_parameters():
        reference[name].requires_grad_(True)
    keypoints = random_input(lifter, batch=4, frames=rf)
    target = torch.randn(4, 1, lifter.num_joints_out, 3)
    (lifter(keypoints, strided=True) - target).square().mean().backward()
    expected = conv1d_reference(reference, lifter.filter_widths, lifter.causal, keypoints, True, training=True)
    (expected - target).square().mean().backward()
    for name, param in lifter.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        expected_grad = reference[name].grad
        # Float32 rounding differs between the two formulations; compare relative to the gradient's scale.
        scale = expected_grad.abs().max().item()
        torch.testing.assert_close(param.grad, expected_grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_state_dict_moves_between_models_and_serves_both_twins() -> None:
    trained = make_lifter(seed=3, causal=True).eval()
    fresh = TemporalConvLifter(channels=32, causal=True).eval()
    result = fresh.load_state_dict(trained.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    keypoints = random_input(trained, batch=2, frames=trained.receptive_field)
    with torch.no_grad():
        torch.testing.assert_close(fresh(keypoints, strided=True), trained(keypoints), rtol=0, atol=1e-5)


def test_non_contiguous_input_is_accepted() -> None:
    lifter = make_lifter().eval()
    keypoints = random_input(lifter, batch=2, frames=2 * lifter.receptive_field)
    strided_view = keypoints[:, ::2]
    with torch.no_grad():
        torch.testing.assert_close(lifter(strided_view), lifter(strided_view.contiguous()), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- timing


@pytest.mark.parametrize("frames", [27, 28, 40, 100])
def test_t_frames_give_t_minus_receptive_field_plus_one(frames: int) -> None:
    lifter = make_lifter(num_joints_out=5).eval()
    with torch.no_grad():
        out = lifter(random_input(lifter, batch=2, frames=frames))
    assert out.shape == (2, frames - 27 + 1, 5, 3)


def _edge_padded_prediction(lifter: TemporalConvLifter, sequence: Tensor) -> Tensor:
    """Per-frame prediction of a whole sequence, edge-padded as the window sampler does."""
    before, after = lifter.timing.pad_before, lifter.timing.pad_after
    padded = torch.cat(
        [sequence[:, :1].expand(-1, before, -1, -1), sequence, sequence[:, -1:].expand(-1, after, -1, -1)], 1
    )
    with torch.no_grad():
        return lifter(padded)


@pytest.mark.parametrize("causal", [True, False])
def test_causal_output_ignores_future_frames(causal: bool) -> None:
    lifter = make_lifter(causal=causal).eval()
    sequence = random_input(lifter, batch=1, frames=60)
    t = 30
    changed = sequence.clone()
    changed[:, t + 1 :] += 1.0
    before, after = _edge_padded_prediction(lifter, sequence), _edge_padded_prediction(lifter, changed)
    assert before.shape[1] == 60  # one prediction per frame
    # The prediction for frame s reads frames up to s + pad - causal_shift: up to s itself when causal.
    unchanged = t + 1 - lifter.timing.pad_after
    assert unchanged == (t + 1 if causal else t + 1 - 13)
    torch.testing.assert_close(after[:, :unchanged], before[:, :unchanged], rtol=0, atol=0)
    if not causal:
        assert (after[:, t] - before[:, t]).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------ BatchNorm


def test_set_bn_momentum_reaches_every_batchnorm_and_drives_running_stats() -> None:
    lifter = make_lifter(filter_widths=(3, 3)).train()
    lifter.set_bn_momentum(0.25)
    batchnorms = [m for m in lifter.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(batchnorms) == 3 and all(bn.momentum == 0.25 for bn in batchnorms)
    old_mean = lifter.expand_bn.running_mean.clone()
    keypoints = random_input(lifter, batch=4, frames=9)
    lifter(keypoints, strided=True)
    # The expand layer's batch mean, computed by hand: (B, 3 groups of 3 frames) rows through expand_conv.
    rows = keypoints.reshape(4, 3, 3, -1).flatten(2).reshape(12, -1)
    weight = lifter.expand_conv.weight.detach().transpose(1, 2).reshape(32, -1)
    batch_mean = (rows @ weight.T).mean(0)
    torch.testing.assert_close(lifter.expand_bn.running_mean, 0.75 * old_mean + 0.25 * batch_mean)
    with pytest.raises(ValueError, match="momentum"):
        lifter.set_bn_momentum(1.5)


# ---------------------------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("p", [0.25, 0.1, 0.5, 0.9])
def test_dropout_mask_has_the_requested_rate_and_scale(p: float) -> None:
    torch.manual_seed(0)
    mask = _dropout_mask(torch.empty(1000, 999), p)  # 999: the element count is not a multiple of a draw
    assert mask.shape == (1000, 999)
    assert mask.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]
    assert (mask == 0).float().mean().item() == pytest.approx(p, abs=0.002)
    torch.manual_seed(0)
    assert torch.equal(mask, _dropout_mask(torch.empty(1000, 999), p))
    assert _dropout_mask(torch.empty(10, dtype=torch.float64), p).dtype == torch.float64


def test_training_dropout_is_seeded_and_off_in_eval() -> None:
    lifter = make_lifter(dropout=0.5).train()
    keypoints = random_input(lifter, batch=8, frames=lifter.receptive_field)
    outputs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outputs.append(lifter(keypoints, strided=True))
    assert torch.equal(outputs[0], outputs[1]) and not torch.allclose(outputs[0], outputs[2])
    lifter.eval()
    with torch.no_grad():
        torch.testing.assert_close(lifter(keypoints, strided=True), lifter(keypoints, strided=True), rtol=0, atol=0)


# -------------------------------------------------------------------------------------------- checking


@pytest.mark.parametrize(
    ("shape", "strided", "message"),
    [
        ((2, 27, 16, 2), False, r"\(B, T, J_in=17, F=2\), got \(2, 27, 16, 2\)"),
        ((2, 27, 17, 3), False, r"\(B, T, J_in=17, F=2\), got \(2, 27, 17, 3\)"),
        ((27, 17, 2), False, r"\(B, T, J_in=17, F=2\), got \(27, 17, 2\)"),
        ((2, 26, 17, 2), False, r"at least receptive_field=27 frames, got shape \(2, 26, 17, 2\)"),
        ((2, 28, 17, 2), True, r"exactly receptive_field=27 frames, got shape \(2, 28, 17, 2\)"),
    ],
)
def test_bad_input_shapes_raise_naming_shape_and_expectation(shape, strided, message) -> None:
    lifter = TemporalConvLifter(channels=8)
    with pytest.raises(ValueError, match=message):
        lifter(torch.zeros(shape), strided=strided)


@pytest.mark.parametrize("strided", [True, False])
def test_gradients_keep_the_parameters_strides(strided: bool) -> None:
    """DDP copies a gradient into its bucket every step, with a warning, unless its strides equal the parameter's."""
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=16)
    frames = 9 if strided else 20
    lifter(torch.randn(4, frames, 17, 2), strided=strided).square().sum().backward()
    mismatched = [name for name, p in lifter.named_parameters() if p.grad.stride() != p.stride()]
    assert mismatched == []


def test_person_normalization_removes_position_scale_and_frame_shape() -> None:
    from components.camera import normalize_screen_coordinates, normalize_to_person
    from components.skeleton import H36M_17

    torch.manual_seed(3)
    pixels = torch.rand(2, 9, 17, 2, dtype=torch.float64) * 400 + 300  # a person somewhere in a large frame
    scores = torch.rand(2, 9, 17, 1, dtype=torch.float64)
    normalized = normalize_to_person(torch.cat([pixels, scores], -1))
    assert torch.equal(normalized[..., 2:], scores)  # scores pass through
    xy = normalized[..., :2]
    torch.testing.assert_close(xy.mean(-2), torch.zeros(2, 9, 2, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(xy.square().sum(-1).mean(-1), torch.ones(2, 9, dtype=torch.float64))
    moved = normalize_to_person(torch.cat([pixels * 2.5 + torch.tensor([-40.0, 7.0]), scores], -1))
    torch.testing.assert_close(moved, normalized)  # translation and uniform scale leave no trace
    flip = torch.tensor(H36M_17.flip_permutation)
    mirrored = torch.cat([pixels * torch.tensor([-1.0, 1.0]), scores], -1)[..., flip, :]
    torch.testing.assert_close(normalize_to_person(mirrored), normalized[..., flip, :] * torch.tensor([-1.0, 1, 1]))
    # The same pixels in a portrait and in a landscape frame: screen units differ, the person view does not.
    portrait = normalize_screen_coordinates(pixels, 1080, 1920)
    landscape = normalize_screen_coordinates(pixels, 1920, 1080)
    assert not torch.allclose(portrait, landscape)
    torch.testing.assert_close(normalize_to_person(portrait), normalize_to_person(landscape))
    still = normalize_to_person(torch.ones(1, 1, 17, 2))  # every joint on one point: no division by zero
    assert torch.isfinite(still).all() and (still == 0).all()


def test_person_normalized_lifter_is_invariant_and_refused_as_trajectory_model() -> None:
    from lightning_modules.supervised import SupervisedLifting

    torch.manual_seed(0)
    lifter = TemporalConvLifter(filter_widths=(3, 3), channels=16, input_normalization="person").eval()
    plain = TemporalConvLifter(filter_widths=(3, 3), channels=16).eval()
    plain.load_state_dict(lifter.state_dict())  # same weights, the normalization is no parameter
    keypoints = torch.rand(2, 11, 17, 2)
    with torch.no_grad():
        out = lifter(keypoints)
        torch.testing.assert_close(lifter(keypoints * 0.3 + torch.tensor([0.5, -0.2])), out, atol=1e-5, rtol=0)
        torch.testing.assert_close(lifter(keypoints[:, :9], strided=True), out[:, :1], atol=1e-5, rtol=0)
        assert not torch.allclose(plain(keypoints), out, atol=1e-3)
    assert "input_normalization=person" in repr(lifter)
    with pytest.raises(ValueError, match="input_normalization must be one of \\('screen', 'person'\\), got 'box'"):
        TemporalConvLifter(input_normalization="box")
    trajectory = TemporalConvLifter(num_joints_out=1, filter_widths=(3, 3), channels=16, input_normalization="person")
    with pytest.raises(ValueError, match="trajectory_model has input_normalization 'person'"):
        SupervisedLifting(lifter, trajectory)
