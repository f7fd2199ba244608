"""Joint mappings: how the joints or markers of a motion-capture file make the Human3.6M joints.

A mapping gives, for each Human3.6M joint name (:data:`components.skeleton.H36M_32` names; the 17 of
:data:`~components.skeleton.H36M_17` are required), a :class:`Source`: one source joint, the mean of several, a
weighted (affine) combination of markers, or a joint extended along its bone. The files' names are matched
after dropping a namespace prefix (``mixamorig:Hips`` -> ``Hips``).

Built-in mappings cover the skeletons met in practice (:data:`BUILTIN`); :func:`detect_mapping` picks the first
whose sources all exist in a file. A user mapping is a YAML file of ``joint: source`` entries, where a source is
a name, a list of names (their mean), ``{weights: {name: w, ...}}`` (weights summing to 1) or
``{joint: name, extend: metres}`` (BVH: the joint moved along the bone from its parent)::

    pelvis: Hips
    spine: [Spine, Spine1]
    head_top: {joint: Head, extend: 0.18}
    right_hip: {weights: {RASI: 0.45, RPSI: 0.25, LASI: 0.05, LPSI: 0.05, RKNE: 0.2}}

Where a built-in entry approximates an anatomical point (a hip centre from pelvis markers, a head top extended
from the head joint), the approximation is consistent within a dataset, which is what a lifter trained and
tested on it needs; it is not an anatomical estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from components.skeleton import H36M_17, H36M_32
from datamodules.file_checks import read_text
from datamodules.mocap.errors import MocapFormatError


@dataclass(frozen=True)
class Source:
    """Where one target joint comes from: ``sum(w * position(name))`` over ``weights``, then moved ``extend``
    metres further along the bone from the (single) joint's parent to the joint."""

    weights: tuple[tuple[str, float], ...]
    extend: float = 0.0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.weights)


@dataclass(frozen=True)
class JointMapping:
    """A named mapping: target joint name -> :class:`Source`."""

    name: str
    sources: Mapping[str, Source]

    @property
    def source_names(self) -> set[str]:
        return {name for source in self.sources.values() for name in source.names}

    def missing(self, available: Iterable[str]) -> list[str]:
        """Source names this mapping needs that ``available`` lacks (namespace prefixes ignored)."""
        names = {bare_name(n) for n in available}
        return sorted(n for n in self.source_names if n not in names)


def bare_name(name: str) -> str:
    """``"mixamorig:LeftArm"`` -> ``"LeftArm"``."""
    return name.rsplit(":", 1)[-1]


def parse_source(spec, where: str) -> Source:
    """A source from its YAML form (see the module docstring); ``where`` names it in errors."""
    if isinstance(spec, str):
        return Source(((spec, 1.0),))
    if isinstance(spec, list) and spec and all(isinstance(n, str) for n in spec):
        return Source(tuple((name, 1.0 / len(spec)) for name in spec))
    if isinstance(spec, dict) and set(spec) == {"weights"} and isinstance(spec["weights"], dict) and spec["weights"]:
        weights = tuple((str(name), float(weight)) for name, weight in spec["weights"].items())
        total = sum(weight for _, weight in weights)
        if abs(total - 1.0) > 1e-6:
            raise MocapFormatError(f"{where}: weights must sum to 1 (a point, not a vector), they sum to {total:g}")
        return Source(weights)
    if isinstance(spec, dict) and set(spec) <= {"joint", "extend"} and isinstance(spec.get("joint"), str):
        return Source(((spec["joint"], 1.0),), float(spec.get("extend", 0.0)))
    raise MocapFormatError(
        f"{where}: a source is a name, a list of names, {{weights: {{name: w}}}} or {{joint: name, extend: m}}; "
        f"got {spec!r}"
    )


def mapping_from_dict(name: str, entries: Mapping, where: str) -> JointMapping:
    """Check and build a mapping; every H36M-17 joint must be given and every target must be an H36M-32 name."""
    if not isinstance(entries, Mapping):
        raise MocapFormatError(f"{where}: a mapping is a dictionary of joint: source, got {type(entries).__name__}")
    unknown = sorted(set(entries) - set(H36M_32.joint_names))
    if unknown:
        raise MocapFormatError(f"{where}: unknown target joint(s) {unknown}; targets are {list(H36M_32.joint_names)}")
    missing = [joint for joint in H36M_17.joint_names if joint not in entries]
    if missing:
        raise MocapFormatError(f"{where}: no source for the Human3.6M joint(s) {missing}")
    sources = {joint: parse_source(spec, f"{where}: {joint}") for joint, spec in entries.items()}
    return JointMapping(name, sources)


def load_mapping(path: str | Path) -> JointMapping:
    """Read a user mapping YAML (see the module docstring)."""
    import yaml

    path = Path(path)
    text = read_text(path, MocapFormatError)
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MocapFormatError(f"{path}: not a YAML mapping ({str(error).splitlines()[0]})") from None
    return mapping_from_dict(path.stem, entries, str(path))


def _sided(left: dict[str, object], right: dict[str, object]) -> dict[str, object]:
    return {**{f"left_{k}": v for k, v in left.items()}, **{f"right_{k}": v for k, v in right.items()}}


def _limbs(pattern: Mapping[str, str]) -> dict[str, object]:
    """``{"hip": "{Side}UpLeg"}`` -> left_hip: LeftUpLeg, right_hip: RightUpLeg (also {S}: L/R, {s}: l/r)."""
    entries = {}
    for side, short in (("Left", "L"), ("Right", "R")):
        for joint, name in pattern.items():
            entries[f"{side.lower()}_{joint}"] = name.format(Side=side, S=short, s=short.lower())
    return entries


BVH_LIMBS = {"hip": "{Side}UpLeg", "knee": "{Side}Leg", "ankle": "{Side}Foot", "shoulder": "{Side}Arm",
             "elbow": "{Side}ForeArm", "wrist": "{Side}Hand"}  # fmt: skip

BUILTIN_ENTRIES: dict[str, dict[str, object]] = {
    # Mixamo and rigs exported like it (HeadTop_End marks the top of the head)
    "mixamo": {"pelvis": "Hips", "spine": "Spine1", "thorax": "Neck", "head": "Head", "head_top": "HeadTop_End",
               **_limbs(BVH_LIMBS), **_limbs({"toe": "{Side}ToeBase", "clavicle": "{Side}Shoulder"})},
    # LAFAN1 (Ubisoft La Forge): end sites have zero length, so the head top extends the head bone
    "lafan": {"pelvis": "Hips", "spine": "Spine1", "thorax": "Neck", "head": {"joint": "Head", "extend": 0.06},
              "head_top": {"joint": "Head", "extend": 0.18},
              **_limbs(BVH_LIMBS), **_limbs({"toe": "{Side}Toe", "clavicle": "{Side}Shoulder"})},
    # CMU motion capture database BVH conversions (Hips, LowerBack, Spine, Spine1, Neck, Neck1, Head)
    "cmu": {"pelvis": "Hips", "spine": "Spine", "thorax": "Neck", "head": "Head", "head_top": "Head_end",
            **_limbs(BVH_LIMBS), **_limbs({"toe": "{Side}ToeBase", "clavicle": "{Side}Shoulder"})},
    # Biovision-style rigs (Hips, Chest, Chest2, Collar, Shoulder, Elbow, Wrist, Hip, Knee, Ankle), e.g. MocapBank
    "biovision": {"pelvis": "Hips", "spine": ["Chest", "Chest2"], "thorax": "Neck", "head": "Head",
                  "head_top": "Head_end",
                  **_limbs({"hip": "{Side}Hip", "knee": "{Side}Knee", "ankle": "{Side}Ankle",
                            "shoulder": "{Side}Shoulder", "elbow": "{Side}Elbow", "wrist": "{Side}Wrist",
                            "clavicle": "{Side}Collar"})},
    # Blender rigify metarig exports (thigh.L, shin.L, foot.L, upper_arm.L, forearm.L, spine.001, neck, face)
    "rigify": {"pelvis": "pelvis", "spine": "spine.001", "thorax": "neck", "head": "face", "head_top": "face_end",
               **_limbs({"hip": "thigh.{S}", "knee": "shin.{S}", "ankle": "foot.{S}", "shoulder": "upper_arm.{S}",
                         "elbow": "forearm.{S}", "wrist": "forearm.{S}_end", "clavicle": "shoulder.{S}"})},
    # TRC of markerless pipelines (Pose2Sim/OpenSim naming of HALPE-26/COCO keypoints)
    "pose2sim": {"pelvis": "Hip", "spine": ["Hip", "Neck"], "thorax": "Neck", "head": "Nose", "head_top": "Head",
                 **_limbs({"hip": "{S}Hip", "knee": "{S}Knee", "ankle": "{S}Ankle", "shoulder": "{S}Shoulder",
                           "elbow": "{S}Elbow", "wrist": "{S}Wrist"})},
    # TRC with Vicon Plug-in Gait full-body markers: joint centres approximated by affine marker combinations
    "plug_in_gait": {
        "pelvis": ["LASI", "RASI", "LPSI", "RPSI"],
        "spine": ["T10", "STRN"],
        "thorax": ["C7", "CLAV"],
        "head": ["LFHD", "RFHD", "LBHD", "RBHD"],
        "head_top": {"weights": {"LFHD": 0.375, "RFHD": 0.375, "LBHD": 0.375, "RBHD": 0.375, "C7": -0.25,
                                 "CLAV": -0.25}},
        **_limbs({"knee": "{S}KNE", "ankle": "{S}ANK", "shoulder": "{S}SHO", "elbow": "{S}ELB"}),
        **_sided({"hip": {"weights": {"LASI": 0.45, "LPSI": 0.25, "RASI": 0.05, "RPSI": 0.05, "LKNE": 0.2}},
                  "wrist": ["LWRA", "LWRB"]},
                 {"hip": {"weights": {"RASI": 0.45, "RPSI": 0.25, "LASI": 0.05, "LPSI": 0.05, "RKNE": 0.2}},
                  "wrist": ["RWRA", "RWRB"]}),
    },
}  # fmt: skip
"""The built-in mappings' YAML-form entries, in the order :func:`detect_mapping` tries them."""

BUILTIN: dict[str, JointMapping] = {
    name: mapping_from_dict(name, entries, f"built-in mapping {name!r}") for name, entries in BUILTIN_ENTRIES.items()
}


def detect_mapping(path: Path, available: Iterable[str], mapping: JointMapping | None = None) -> JointMapping:
    """``mapping`` if given (checked against ``available``), else the first built-in one that fits.

    Raises:
        MocapFormatError: naming the file, its joints and, for the closest mapping, what it lacks.
    """
    available = list(available)
    if mapping is not None:
        missing = mapping.missing(available)
        if missing:
            raise MocapFormatError(f"{path}: mapping {mapping.name!r} needs {missing}, which the file lacks")
        return mapping
    fits = [candidate for candidate in BUILTIN.values() if not candidate.missing(available)]
    if fits:
        return fits[0]
    closest = min(BUILTIN.values(), key=lambda candidate: len(candidate.missing(available)))
    shown = ", ".join(available[:40]) + (", ..." if len(available) > 40 else "")
    raise MocapFormatError(
        f"{path}: unknown joint set ({shown}); no built-in mapping fits (closest {closest.name!r} lacks "
        f"{closest.missing(available)[:6]}); give one with --mapping MAPPING.yaml (docs/datasets/mocap.md)"
    )
