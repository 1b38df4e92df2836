"""From a posed 3D skeleton to the flat, depth-sorted parts the renderer draws, and the keypoints.

Each part is a rounded tapered box between two projected joints, with the garment slots it paints and
where one garment gives way to the next (a sleeve's end, a trouser hem). Widths come from the
person's proportions; the depth of a part is the camera-frame depth of its middle, nudged so that
ties go the natural way (arms over the torso, the torso over the tops of the thighs).
"""

from __future__ import annotations

import numpy as np

from gpa_lib.pose.data.body import (
    BOTTOM,
    EYES,
    HAIR,
    LEGWEAR,
    MOUTH,
    SHOES,
    SKIN,
    TOP,
    Part,
    Person,
    Pose,
    keypoints_of,
    pose_skeleton,
    project,
)


def _cover(fraction: float, length: float) -> float:
    """Where a garment covering ``fraction`` of a segment ``length`` px long ends (``cut`` of a Part).

    0 or less covers nothing (not even the rounded cap before the joint), 1 or more all of it.
    """
    if fraction <= 0:
        return -np.inf
    return np.inf if fraction >= 1 else fraction * length


def image_frame(person: Person, pose: Pose, size) -> tuple[float, float, float]:
    """Pixels per body unit, the pelvis column and the ground row for an image of ``size`` (H, W)."""
    height, width = size
    return person.height_frac * height, width * (0.5 + pose.x_offset), pose.ground * height


def body_parts(person: Person, pose: Pose, size) -> tuple[list[Part], np.ndarray]:
    """The flat parts of ``person`` in ``pose`` for an image of ``size`` (H, W), and its keypoints.

    Returns the parts sorted back to front and the keypoints ``(18, 2)`` as (y, x) pixels.
    """
    p = person
    joints = pose_skeleton(person, pose)
    scale, centre_x, ground_y = image_frame(person, pose, size)
    keypoints = keypoints_of(joints, scale, centre_x, ground_y, size)

    def px(name: str) -> np.ndarray:
        return project(joints[name], scale, centre_x, ground_y)

    def depth(*names: str) -> float:
        return float(np.mean([joints[n][2] for n in names]))

    parts: list[Part] = []
    # Torso: a tapered box from the top of the shoulders to the crotch; in side views it shows its
    # depth instead of its width (the half-width of a turned ellipse).
    cos_yaw, sin_yaw = abs(np.cos(pose.yaw)), abs(np.sin(pose.yaw))
    chest = np.hypot(p.chest_w * cos_yaw, p.torso_depth * sin_yaw) * scale
    hips = np.hypot(p.hip_w * cos_yaw, 0.9 * p.torso_depth * sin_yaw) * scale
    neck, crotch = px("neck"), px("crotch")
    torso_len = float(np.linalg.norm(crotch - neck))
    down = (crotch - neck) / max(torso_len, 1e-6)
    top = neck - down * 0.025 * scale
    torso_depth = depth("neck", "pelvis")
    parts.append(
        Part("torso", top, crotch, chest, hips, torso_depth, TOP, BOTTOM,
             cut=p.top_len * (torso_len + 0.025 * scale), bulge=-p.waist_pinch * scale,
             ext1=0.02 * scale, rounding=0.045 * scale, shade=0.25)
    )  # fmt: skip
    # Neck, just behind the torso and the head so that the collar and the chin cover it.
    head_depth = depth("head")
    neck_w = p.neck_w * scale
    parts.append(
        Part("neck", neck, px("head"), neck_w, neck_w, min(torso_depth, head_depth) - 1e-3, SKIN,
             rounding=0.5 * neck_w)
    )  # fmt: skip
    # Head: an upright stadium along the projected head axis; the renderer paints hair on it where
    # the head's 3D normal points up or back.
    head = px("head")
    up = np.array([-joints["head_up"][1], joints["head_up"][0]])  # (y, x) in the image
    up = up / max(float(np.linalg.norm(up)), 1e-6)
    half = max(p.head_ry - p.head_rx, 0.0) * scale
    rx = p.head_rx * scale
    parts.append(
        Part("head", head + up * half, head - up * half, rx, 0.88 * rx, head_depth, HAIR, SKIN,
             bulge=0.06 * rx, ext0=rx, ext1=rx, rounding=rx, shade=0.2,
             head_rotation=joints["head_rot"])
    )  # fmt: skip
    if p.long_hair > 0:
        hair_top = px("hair_top")
        hang = np.array([1.0, 0.0]) * p.long_hair * scale  # hair hangs straight down
        # Long hair lies on the back: behind head, neck and torso unless the face is turned away.
        facing = joints["head_rot"][2, 2] > -0.2
        hair_depth = (
            min(torso_depth, head_depth) - 0.01 if facing else max(torso_depth, head_depth) + 0.005
        )
        parts.append(
            Part("hair", hair_top, hair_top + hang, 1.15 * rx, 1.35 * rx, hair_depth, HAIR,
                 bulge=0.1 * rx, ext1=0.6 * rx, rounding=0.8 * rx, shade=0.25)
        )  # fmt: skip
    # Eyes and mouth: small capsules across the head axis, drawn only when they face the camera.
    for feature, slot, length, width in (
        ("left_eye", EYES, 0.1, 0.085),
        ("right_eye", EYES, 0.1, 0.085),
        ("mouth", MOUTH, 0.3, 0.06),
    ):
        if joints[f"{feature}_normal"][2] > 0.25:
            centre = px(feature)
            across = np.array([up[1], -up[0]]) * length * rx / 2
            w = width * rx
            parts.append(
                Part(feature, centre - across, centre + across, w, w, depth(feature), slot,
                     ext0=w, ext1=w, rounding=w, shade=0.0)
            )  # fmt: skip

    # Limbs: sleeves and trouser legs end at a cut along the limb, skin or legwear beyond.
    sleeve_upper = _cover(p.sleeve, p.upper_arm * scale)
    sleeve_lower = _cover(p.sleeve - 1.0, p.forearm * scale)
    trousers = p.bottoms in ("trousers", "shorts")
    thigh_cut = _cover(p.leg_cover, p.thigh * scale) if trousers else -np.inf
    shin_cut = _cover(p.leg_cover - 1.0, p.shin * scale) if trousers else -np.inf
    aw, lw = np.array(p.arm_w) * scale, np.array(p.leg_w) * scale
    hw, fw = p.hand_w * scale, p.foot_w * scale
    for side in ("left", "right"):
        shoulder, elbow, wrist = px(f"{side}_shoulder"), px(f"{side}_elbow"), px(f"{side}_wrist")
        hip, knee, ankle = px(f"{side}_hip"), px(f"{side}_knee"), px(f"{side}_ankle")
        # Arms get a small depth bonus so that, at equal depth, they cover the torso.
        parts += [
            Part(f"{side}_upper_arm", shoulder, elbow, aw[0], aw[1],
                 depth(f"{side}_shoulder", f"{side}_elbow") + 0.03, TOP, SKIN, cut=sleeve_upper,
                 bulge=0.1 * aw[1], ext0=aw[0], ext1=aw[1], rounding=aw[1]),
            Part(f"{side}_forearm", elbow, wrist, aw[1], aw[2],
                 depth(f"{side}_elbow", f"{side}_wrist") + 0.035, TOP, SKIN, cut=sleeve_lower,
                 bulge=0.1 * aw[2], ext0=aw[1], rounding=aw[2]),
            Part(f"{side}_hand", wrist, px(f"{side}_hand"), 0.85 * hw, hw,
                 depth(f"{side}_wrist", f"{side}_hand") + 0.04, SKIN,
                 ext0=0.3 * hw, ext1=0.5 * hw, rounding=0.8 * hw, shade=0.15),
            # Legs get a depth malus so that the torso's crotch covers the tops of the thighs.
            Part(f"{side}_thigh", hip, knee, lw[0], lw[1],
                 depth(f"{side}_hip", f"{side}_knee") - 0.03, BOTTOM, LEGWEAR, cut=thigh_cut,
                 bulge=0.1 * lw[0], ext0=lw[0], ext1=lw[1], rounding=lw[1]),
            Part(f"{side}_shin", knee, ankle, lw[1], lw[2],
                 depth(f"{side}_knee", f"{side}_ankle") - 0.03, BOTTOM, LEGWEAR, cut=shin_cut,
                 bulge=0.25 * lw[1], ext0=lw[1], ext1=lw[2], rounding=lw[2]),
            Part(f"{side}_foot", px(f"{side}_heel"), px(f"{side}_toe"), fw, 0.9 * fw,
                 depth(f"{side}_heel", f"{side}_toe"), SHOES,
                 bulge=0.1 * fw, rounding=0.9 * fw, shade=0.2),
        ]  # fmt: skip

    if p.bottoms in ("skirt", "dress"):
        # Hangs from the waist along the torso axis and widens to clear the legs at the hem; drawn
        # over the thighs. A dress continues the top's pattern (same slot, offset texture frame).
        waist = px("pelvis") - down * 0.06 * scale
        hem = waist + down * (p.skirt_len + 0.06) * scale
        frac = min(p.skirt_len / p.thigh, 1.0)
        at_hem = [px(f"{n}_hip") * (1 - frac) + px(f"{n}_knee") * frac for n in ("left", "right")]
        across = np.array([down[1], -down[0]])
        spread = max(abs(float(np.dot(k - hem, across))) for k in at_hem) + lw[1]
        hem_w = max(hips + p.skirt_flare * scale, spread)
        leg_depth = max(part.depth for part in parts if part.name.endswith("thigh"))
        dress = p.bottoms == "dress"
        parts.append(
            Part("skirt", waist, hem, 0.95 * hips, hem_w, max(leg_depth, torso_depth) + 0.01,
                 TOP if dress else BOTTOM, s_offset=float(np.dot(waist - top, down)) if dress else 0.0,
                 rounding=0.02 * scale, shade=0.2)
        )  # fmt: skip
    parts.sort(key=lambda part: part.depth)
    return parts, keypoints
