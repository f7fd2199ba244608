"""Published VideoPose3D checkpoints (``.bin``): reading them safely and rebuilding their lifters.

A checkpoint is a dict with ``model_pos`` (the pose lifter's state_dict), ``model_traj`` (the trajectory
model's, or None) and training state (epoch, lr, optimizer, a NumPy ``RandomState``). The state_dict layout is
exactly :class:`components.networks.temporal_conv.TemporalConvLifter`'s, so the weights load without renaming;
the architecture is read back from the weight shapes.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from components.errors import InputError, MissingKeyError
from components.networks.published import read_published
from components.networks.temporal_conv import TemporalConvLifter


def load_videopose3d_checkpoint(path: str | Path, trust_pickle: bool = False) -> dict:
    """Read a VideoPose3D ``.bin`` checkpoint (``components.networks.published.read_published``).

    Files written by the original training script also pickle a NumPy ``RandomState``: those need
    ``trust_pickle=True`` (only for files from a source you trust).
    """
    checkpoint = read_published(path, trust_pickle, "VideoPose3D checkpoint")
    if not isinstance(checkpoint, dict) or "model_pos" not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise MissingKeyError(f"{path}: expected a dict with key 'model_pos' (VideoPose3D checkpoint), found {found}")
    return checkpoint


def lifter_config(state_dict: dict[str, Tensor], in_features: int = 2, causal: bool = False) -> dict:
    """The ``TemporalConvLifter`` init arguments that produce ``state_dict``'s shapes.

    Causality and the split of ``expand_conv``'s input channels into joints x features cannot be read from
    the weights, hence ``causal`` and ``in_features``.
    """
    for key in ("expand_conv.weight", "shrink.weight"):
        if key not in state_dict:
            raise MissingKeyError(
                f"state_dict lacks {key!r}: not a temporal convolution lifter ({sorted(state_dict)[:5]}...)"
            )
    channels, inputs, first_width = state_dict["expand_conv.weight"].shape
    if inputs % in_features:
        raise InputError(f"expand_conv takes {inputs} input channels, not a multiple of in_features={in_features}")
    block_keys = sorted(
        (k for k in state_dict if k.startswith("layers_conv.") and k.endswith(".weight")),
        key=lambda k: int(k.split(".")[1]),
    )
    widths = [first_width] + [state_dict[k].shape[-1] for k in block_keys[0::2]]
    return {
        "num_joints_in": inputs // in_features,
        "num_joints_out": state_dict["shrink.weight"].shape[0] // 3,
        "in_features": in_features,
        "filter_widths": [int(w) for w in widths],
        "channels": int(channels),
        "causal": causal,
    }


def lifter_from_state_dict(state_dict: dict[str, Tensor], in_features: int = 2, causal: bool = False):
    """A :class:`TemporalConvLifter` with ``state_dict`` loaded (strictly); returns ``(lifter, config)``."""
    config = lifter_config(state_dict, in_features, causal)
    lifter = TemporalConvLifter(**config)
    lifter.load_state_dict(state_dict, strict=True)
    return lifter, config
