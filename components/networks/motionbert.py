"""Published MotionBERT pose checkpoints into :class:`components.networks.dstformer.DSTformer`.

Two layouts of the same weights exist (``reference/motionbert.md``):

- the official repository's: a dict whose ``model_pos`` is the state_dict of a ``DataParallel``-wrapped model
  (keys prefixed ``module.``); its names are DSTformer's own;
- MMPose's conversion: a dict whose ``state_dict`` splits the model into ``backbone.`` (spatial embedding
  ``spat_embed``, fusion layers ``attn_regress``, MLPs as ``Sequential`` indices 0 and 2) and ``head.``
  (``pre_logits.fc`` and the output layer ``fc``).

The architecture is read back from the weight shapes, except ``num_heads`` (a reshape, not a weight). The
published model predicts "2.5D" poses in normalised image units (x, y divided by half the frame width, depth on
the same scale), root-relative; ``output_scale`` turns them into metres (:data:`HUMAN36M_METRES_PER_UNIT`).
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import Tensor

from components.errors import InputError, MissingKeyError
from components.networks.dstformer import DSTformer
from components.networks.published import read_published

# Metres per normalised 2.5D unit for Human3.6M's cameras: half the 1000-pixel frame width (500 px) times the
# metres per pixel of a subject 5 m away seen with the cameras' mean focal length of 1146 px (500 * 5 / 1146).
HUMAN36M_METRES_PER_UNIT = 2.18

# MMPose name -> DSTformer name, applied in order (the first pattern that matches a key wins for that part)
MMPOSE_RENAMES = (
    (re.compile(r"^backbone\.spat_embed$"), "pos_embed"),
    (re.compile(r"^backbone\.attn_regress\."), "ts_attn."),
    (re.compile(r"\.mlp_([st])\.0\."), r".mlp_\1.fc1."),
    (re.compile(r"\.mlp_([st])\.2\."), r".mlp_\1.fc2."),
    (re.compile(r"^backbone\."), ""),
    (re.compile(r"^head\.pre_logits\."), "pre_logits."),
    (re.compile(r"^head\.fc\."), "head."),
)
SHAPE_KEYS = ("joints_embed.weight", "pos_embed", "temp_embed", "pre_logits.fc.weight", "head.weight")


def motionbert_state_dict(checkpoint: object, source: str | Path) -> tuple[dict[str, Tensor], str]:
    """DSTformer's state_dict from a loaded checkpoint and which layout it came in (``official``/``mmpose``).

    Raises:
        MissingKeyError: neither layout (names the keys found).
    """
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model_pos"), dict):
        weights = checkpoint["model_pos"]
        return {key.removeprefix("module."): value for key, value in weights.items()}, "official"
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        return {_mmpose_to_ours(key): value for key, value in checkpoint["state_dict"].items()}, "mmpose"
    found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise MissingKeyError(
        f"{source}: expected a MotionBERT checkpoint with 'model_pos' (official) or 'state_dict' (MMPose), "
        f"found {found}"
    )


def _mmpose_to_ours(key: str) -> str:
    for pattern, replacement in MMPOSE_RENAMES:
        key = pattern.sub(replacement, key)
    return key


def dstformer_config(state_dict: dict[str, Tensor], num_heads: int = 8, source: str | Path = "checkpoint") -> dict:
    """The :class:`DSTformer` init arguments that produce ``state_dict``'s shapes (``num_heads`` is given)."""
    missing = [key for key in SHAPE_KEYS if key not in state_dict]
    if missing:
        raise MissingKeyError(
            f"{source}: lacks {missing[0]!r}: not a DSTformer (MotionBERT) pose model; its keys begin "
            f"{sorted(state_dict)[:4]}"
        )
    dim_feat, in_features = state_dict["joints_embed.weight"].shape
    layers = {int(match.group(1)) for key in state_dict if (match := re.match(r"blocks_st\.(\d+)\.", key))}
    hidden = state_dict["blocks_st.0.mlp_s.fc1.weight"].shape[0] if layers else dim_feat
    outputs = state_dict["head.weight"].shape[0]
    if outputs != 3:
        raise InputError(f"{source}: head.weight predicts {outputs} values per joint, expected 3 (a pose head)")
    return {
        "num_joints_in": int(state_dict["pos_embed"].shape[1]),
        "num_joints_out": int(state_dict["pos_embed"].shape[1]),
        "in_features": int(in_features),
        "dim_feat": int(dim_feat),
        "dim_rep": int(state_dict["pre_logits.fc.weight"].shape[0]),
        "depth": len(layers),
        "num_heads": num_heads,
        "mlp_ratio": hidden / dim_feat,
        "maxlen": int(state_dict["temp_embed"].shape[1]),
        "att_fuse": "ts_attn.0.weight" in state_dict,
    }


def load_motionbert(
    path: str | Path,
    num_heads: int = 8,
    output_scale: float = HUMAN36M_METRES_PER_UNIT,
    trust_pickle: bool = False,
) -> tuple[DSTformer, str]:
    """A :class:`DSTformer` holding a published MotionBERT pose checkpoint's weights, and the layout it came in.

    Raises:
        MissingKeyError: not a MotionBERT pose checkpoint. InputError: weights that do not fit the architecture
            their shapes describe (lists the missing and unexpected keys).
    """
    state_dict, origin = motionbert_state_dict(read_published(path, trust_pickle, "MotionBERT checkpoint"), path)
    lifter = DSTformer(**dstformer_config(state_dict, num_heads, path), output_scale=output_scale)
    expected = set(lifter.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise InputError(
            f"{path} ({origin} layout) does not fit a DSTformer: missing keys {_listed(missing)}, "
            f"unexpected keys {_listed(unexpected)}"
        )
    wrong = [key for key, value in lifter.state_dict().items() if state_dict[key].shape != value.shape]
    if wrong:
        raise InputError(
            f"{path}: {wrong[0]} has shape {tuple(state_dict[wrong[0]].shape)}, the architecture read from the "
            f"other weights needs {tuple(lifter.state_dict()[wrong[0]].shape)}"
        )
    lifter.load_state_dict(state_dict, strict=True)
    return lifter.eval(), origin


def _listed(keys: list[str], shown: int = 5) -> str:
    return ", ".join(keys[:shown]) + (f" ... ({len(keys)} in all)" if len(keys) > shown else "") if keys else "none"
