"""The synthetic person's data types and 3D kinematics: joints, projection, OpenPose keypoints.

A person is a 3D stick skeleton with body-height units (a standing person is about 1 tall) posed by
joint angles, turned by a yaw about the vertical axis and projected orthographically onto the
image. Every body part is then a 2D capsule-like shape between two projected joints (an orthographic
cylinder projects to a capsule), drawn back to front by the 3D depth of its middle, which gives
self-occlusion for free: in a side view the far arm goes behind the torso.

Sampling people and poses lives in :mod:`gpa_lib.pose.data.sampling`, the flat parts in
:mod:`gpa_lib.pose.data.parts`, their rasterisation in :mod:`gpa_lib.pose.data.render`.

Frames: body frame ``x`` to the person's left, ``y`` up, ``z`` out of the chest. Camera frame after
the yaw: ``x`` image right, ``y`` up, ``z`` towards the camera (larger ``z`` is drawn later).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gpa_lib.pose.data.keypoints import KEYPOINT_INDEX, N_KEYPOINTS

# Texture slots of a person's wardrobe; each part paints one or two of them.
SKIN, HAIR, TOP, BOTTOM, SHOES, LEGWEAR, EYES, MOUTH = range(8)
N_SLOTS = 8

VIEWS = ("mixed", "front")


@dataclass(frozen=True)
class Texture:
    """A two-colour procedural pattern over a part's local frame (units: body heights).

    ``g(s, t) = sum_i amp_i sin(k_i . (s, t) + phase_i) + product * sin(wave 0) sin(wave 1) - threshold``;
    the pixel shows ``colour2`` where ``g > 0`` and ``colour1`` elsewhere. Stripes are one wave,
    checks the product of two orthogonal ones, dots two cosines above a high threshold, prints three
    waves in random directions, a solid colour no wave at all.
    """

    kind: str  # "solid", "stripes", "checks", "dots" or "print" (for the data card and tests)
    colour1: tuple[float, float, float]  # RGB in [0, 1]
    colour2: tuple[float, float, float]  # RGB in [0, 1]
    waves: tuple[
        tuple[float, float, float, float], ...
    ] = ()  # (amp, k_s, k_t, phase); k in rad/body unit
    product: float = 0.0  # weight of the product of waves 0 and 1 (checks)
    threshold: float = 1.0  # g's offset; sets the stripe duty cycle and the dot radius


@dataclass(frozen=True)
class Person:
    """Shape and outfit: what stays the same between the two poses of a pair (body-height units)."""

    head_rx: float  # head half-width
    head_ry: float  # head half-height
    neck_len: float
    neck_w: float  # half-width
    torso_len: float  # neck (mid-shoulder) to hip joints
    shoulder_half: float  # neck to shoulder joint
    hip_half: float  # pelvis centre to hip joint
    chest_w: float  # torso half-width at the shoulders
    waist_pinch: float  # how much narrower the waist is than a straight taper
    hip_w: float  # torso half-width at the hips
    torso_depth: float  # torso half-depth, seen in side views
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    ankle_h: float  # ankle height above the sole
    foot: float  # heel to toe
    arm_w: tuple[float, float, float]  # half-widths at shoulder, elbow, wrist
    leg_w: tuple[float, float, float]  # half-widths at hip, knee, ankle
    hand_w: float
    foot_w: float
    long_hair: float  # length of hair hanging behind the head, 0 for short hair
    hairline: float  # head-frame height above which the head is hair (fringe)
    top_len: float  # fraction of the torso the top covers (1 = to the crotch)
    sleeve: float  # sleeve length in upper arms: 0 none, 0.5 short, 2 long (covers the forearm)
    bottoms: str  # "trousers", "shorts", "skirt" or "dress"
    leg_cover: float  # trousers/shorts: fraction of the leg covered (thigh + shin = 2)
    skirt_len: float  # skirt or dress length below the hip joints
    skirt_flare: float  # extra half-width at the hem
    textures: tuple[Texture, ...] = field(default_factory=tuple)  # one per slot, SKIN..MOUTH
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    height_frac: float = 0.85  # person height as a fraction of the image height


@dataclass(frozen=True)
class Pose:
    """Joint angles (radians) and placement for one view of a person."""

    yaw: float  # 0 faces the camera, pi shows the back
    lean: float  # torso sideways
    bend: float  # torso forwards
    head_tilt: float
    head_turn: float
    head_nod: float
    # (left, right) arms: abduction, flexion, elbow, twist.
    arms: tuple[tuple[float, float, float, float], ...]
    # (left, right) legs: abduction, flexion, knee, toe-out.
    legs: tuple[tuple[float, float, float, float], ...]
    x_offset: float  # horizontal shift of the pelvis, fraction of the image width
    ground: float  # sole height, fraction of the image height from the top


@dataclass
class Part:
    """A flat part in image pixels: a rounded, tapered box from ``a`` to ``b`` (points as y, x).

    Pixels in local coordinates ``s`` (along ``a -> b``, 0 at ``a``) and ``t`` (across) are inside when
    ``-ext0 <= s <= L + ext1`` and ``|t| <= w(s)``, ``w`` going from ``w0`` to ``w1`` with a quadratic
    ``bulge`` in the middle; corners are rounded by ``rounding``. The part paints texture ``slot_a``
    where ``s + s_offset < cut`` and ``slot_b`` elsewhere. All lengths in pixels.
    """

    name: str
    a: np.ndarray  # (2,) start joint, (y, x) pixels
    b: np.ndarray  # (2,) end joint, (y, x) pixels
    w0: float  # half-width at a
    w1: float  # half-width at b
    depth: float  # camera-frame depth; larger is nearer and drawn later
    slot_a: int  # texture slot before the cut
    slot_b: int = SKIN  # texture slot after the cut
    cut: float = float("inf")  # where slot_a gives way to slot_b, along s + s_offset
    bulge: float = 0.0  # extra half-width in the middle (negative pinches, as a waist)
    ext0: float = 0.0  # how far the part reaches beyond a
    ext1: float = 0.0  # how far the part reaches beyond b
    rounding: float = 0.0  # corner radius, at most the half-widths
    s_offset: float = 0.0  # texture-frame offset along s, to continue a pattern across parts
    shade: float = 0.3  # cylinder shading strength at the silhouette
    head_rotation: np.ndarray | None = None  # (3, 3) head-to-camera rotation, for the hair mask


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _swing(abduction: float, flexion: float, side: float) -> np.ndarray:
    """Direction of a limb hanging straight down, swung out by ``abduction`` and forward by ``flexion``."""
    return np.array(
        [
            side * np.sin(abduction),
            -np.cos(abduction) * np.cos(flexion),
            np.cos(abduction) * np.sin(flexion),
        ]
    )


def _bend(direction: np.ndarray, angle: float, twist: float, side: float, forward: np.ndarray):
    """Direction of the next segment after a joint bends by ``angle``, in a plane turned by ``twist``.

    With ``twist = 0`` the bend goes towards ``forward``; positive ``twist`` turns it towards the
    body's midline (for an arm of ``side`` +1 left, -1 right).
    """
    f = forward - np.dot(forward, direction) * direction
    if np.linalg.norm(f) < 1e-3:  # limb points along `forward`: bend upwards instead
        f = np.array([0.0, 1.0, 0.0]) - direction[1] * direction
    f = _unit(f)
    g = np.cross(direction, f)
    e = np.cos(twist) * f + side * np.sin(twist) * g
    return np.cos(angle) * direction + np.sin(angle) * e


def pose_skeleton(person: Person, pose: Pose) -> dict[str, np.ndarray]:
    """3D joint positions in the camera frame (body-height units, soles at ``y = 0``)."""
    p = person
    joints: dict[str, np.ndarray] = {}
    pelvis = np.array([0.0, p.ankle_h + p.shin + p.thigh, 0.0])
    joints["pelvis"] = pelvis
    torso_rot = _rot_z(pose.lean) @ _rot_x(pose.bend)
    neck = pelvis + torso_rot @ np.array([0.0, p.torso_len, 0.0])
    joints["neck"] = neck
    joints["crotch"] = pelvis + torso_rot @ np.array([0.0, -0.06, 0.0])
    head_rot = torso_rot @ _rot_z(pose.head_tilt) @ _rot_y(pose.head_turn) @ _rot_x(pose.head_nod)
    joints["head"] = neck + head_rot @ np.array([0.0, p.neck_len + 0.85 * p.head_ry, 0.0])
    forward = torso_rot @ np.array([0.0, 0.0, 1.0])

    for side, name in ((1.0, "left"), (-1.0, "right")):
        abduction, flexion, elbow, twist = pose.arms[0 if side > 0 else 1]
        shoulder = neck + torso_rot @ np.array([side * p.shoulder_half, -0.012, 0.0])
        upper = torso_rot @ _swing(abduction, flexion, side)
        lower = _bend(upper, elbow, twist, side, forward)
        joints[f"{name}_shoulder"] = shoulder
        joints[f"{name}_elbow"] = shoulder + p.upper_arm * upper
        joints[f"{name}_wrist"] = joints[f"{name}_elbow"] + p.forearm * lower
        joints[f"{name}_hand"] = joints[f"{name}_wrist"] + p.hand * _bend(
            lower, 0.2, 0.0, side, forward
        )

        abduction, flexion, knee, toe_out = pose.legs[0 if side > 0 else 1]
        hip = pelvis + np.array([side * p.hip_half, 0.0, 0.0])
        thigh = _swing(abduction, flexion, side)
        # The knee bends backwards: towards -forward, whatever the thigh's swing.
        shin = _bend(thigh, -knee, 0.0, side, np.array([0.0, 0.0, 1.0]))
        joints[f"{name}_hip"] = hip
        joints[f"{name}_knee"] = hip + p.thigh * thigh
        ankle = joints[f"{name}_knee"] + p.shin * shin
        joints[f"{name}_ankle"] = ankle
        toe_dir = _unit(np.array([side * np.sin(toe_out), -0.15, np.cos(toe_out)]))
        heel = ankle + np.array([0.0, -0.55 * p.ankle_h, 0.0]) - 0.22 * p.foot * toe_dir
        joints[f"{name}_heel"] = heel
        joints[f"{name}_toe"] = heel + p.foot * toe_dir

    # Face points on the head ellipsoid (head frame), kept with their outward normals for visibility.
    radii = np.array([p.head_rx, p.head_ry, 1.05 * p.head_rx])
    face = {
        "nose": (0.0, -0.15, 1.08),
        "left_eye": (0.36, 0.12, 0.9),
        "right_eye": (-0.36, 0.12, 0.9),
        "left_ear": (1.0, 0.0, -0.05),
        "right_ear": (-1.0, 0.0, -0.05),
        "mouth": (0.0, -0.5, 0.85),
    }
    for name, local in face.items():
        local = np.asarray(local)
        joints[name] = joints["head"] + head_rot @ (local * radii)
        joints[f"{name}_normal"] = head_rot @ _unit(local)
    joints["hair_top"] = joints["head"] + head_rot @ np.array(
        [0.0, 0.35 * p.head_ry, -0.5 * p.head_rx]
    )
    joints["head_up"] = head_rot @ np.array([0.0, 1.0, 0.0])
    joints["head_rot"] = head_rot

    # Turn the whole body, then stand it on the ground: the lowest sole point touches y = 0.
    yaw = _rot_y(pose.yaw)
    for name in list(joints):
        joints[name] = yaw @ joints[name]
    floor = min(joints[f"{s}_{e}"][1] for s in ("left", "right") for e in ("heel", "toe"))
    floor -= p.foot_w
    for name in joints:
        if not name.endswith(("_normal", "_up", "_rot")):
            joints[name] = joints[name] - np.array([0.0, floor, 0.0])
    return joints


# Minimum camera-facing component of a face point's normal for OpenPose to report it.
_FACE_VISIBLE = {"nose": -0.1, "eye": 0.2, "ear": -0.35}


def project(point: np.ndarray, scale: float, centre_x: float, ground_y: float) -> np.ndarray:
    """Camera-frame point (body units) to image ``(y, x)`` pixel coordinates.

    ``ground_y`` and ``centre_x`` are continuous image coordinates (0 at the top-left corner of the
    image); the result is in pixel-index units, pixel ``i`` centred on ``i``: hence the half-pixel
    shift, which keeps renders at different sizes aligned.
    """
    return np.array([ground_y - scale * point[1] - 0.5, centre_x + scale * point[0] - 0.5])


def keypoints_of(
    joints: dict[str, np.ndarray], scale: float, centre_x: float, ground_y: float, size
) -> np.ndarray:
    """The 18 OpenPose keypoints ``(18, 2)`` as (y, x) pixels, -1 where hidden or outside the image."""
    height, width = size
    out = np.full((N_KEYPOINTS, 2), -1.0)
    for name, index in KEYPOINT_INDEX.items():
        if name == "neck":  # OpenPose's neck is the midpoint of the shoulders
            point = 0.5 * (joints["left_shoulder"] + joints["right_shoulder"])
        else:
            point = joints[name]
        kind = name.split("_")[-1]
        if kind in _FACE_VISIBLE and joints[f"{name}_normal"][2] < _FACE_VISIBLE[kind]:
            continue
        yx = project(point, scale, centre_x, ground_y)
        if -0.5 <= yx[0] < height - 0.5 and -0.5 <= yx[1] < width - 0.5:
            out[index] = yx
    return out
