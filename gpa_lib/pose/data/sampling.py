"""Sampling a synthetic person (body proportions, skin and hair, garments, textures) and poses.

A person is fixed for a pair: the two images of an item show the same person in the same clothes,
each in a pose of its own. Lengths are in body heights (a standing person is about 1 tall);
texture frequencies are in cycles per body height, so a pattern looks the same at every size.
"""

from __future__ import annotations

import colorsys

import numpy as np

from gpa_lib.pose.data.body import N_SLOTS, Person, Pose, Texture

# Skin tones (sRGB in [0, 1]), light to dark.
_SKIN = (
    (0.96, 0.80, 0.69),
    (0.92, 0.74, 0.60),
    (0.85, 0.64, 0.50),
    (0.76, 0.54, 0.40),
    (0.60, 0.42, 0.30),
    (0.45, 0.30, 0.22),
    (0.33, 0.22, 0.16),
)
_HAIR = (
    (0.08, 0.06, 0.05),
    (0.22, 0.14, 0.09),
    (0.40, 0.26, 0.15),
    (0.55, 0.27, 0.12),
    (0.80, 0.66, 0.42),
    (0.70, 0.70, 0.68),
)
TEXTURE_KINDS = ("solid", "stripes", "checks", "dots", "print")
_KIND_PROBS = (0.3, 0.3, 0.13, 0.12, 0.15)


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def sample_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A garment colour: a neutral (black, grey, white, beige) a third of the time, else any hue."""
    if rng.random() < 0.33:
        value = rng.choice([0.1, 0.25, 0.5, 0.75, 0.95]) + rng.uniform(-0.05, 0.05)
        return colorsys.hsv_to_rgb(rng.uniform(0.05, 0.15), rng.uniform(0, 0.15), value)
    return colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.3, 0.95), rng.uniform(0.3, 0.95))


def _contrasting(rng: np.random.Generator, colour) -> tuple[float, float, float]:
    """A second colour that stands out from ``colour`` (luma apart by at least 0.3)."""
    for _ in range(20):
        other = sample_colour(rng)
        if abs(_luma(other) - _luma(colour)) >= 0.3:
            return other
    return (0.05, 0.05, 0.05) if _luma(colour) > 0.5 else (0.95, 0.95, 0.95)


def _wave(frequency: float, angle: float, phase: float) -> tuple[float, float, float, float]:
    k = 2 * np.pi * frequency  # radians per body unit
    return (1.0, float(k * np.cos(angle)), float(k * np.sin(angle)), float(phase))


def sample_texture(rng: np.random.Generator, kind: str | None = None, colour=None) -> Texture:
    """A garment texture of ``kind`` (random when ``None``) around base ``colour`` (random when ``None``)."""
    kind = kind or str(rng.choice(TEXTURE_KINDS, p=_KIND_PROBS))
    c1 = tuple(float(c) for c in (colour if colour is not None else sample_colour(rng)))
    c2 = tuple(float(c) for c in _contrasting(rng, c1))
    phase = rng.uniform(0, 2 * np.pi, size=3)
    # Half of all stripes run along or across the part, as most striped clothes do.
    angle = rng.choice([0.0, np.pi / 2]) if rng.random() < 0.5 else rng.uniform(0, np.pi)
    if kind == "solid":
        return Texture(kind, c1, c2)
    if kind == "stripes":
        freq = rng.uniform(8, 24)
        return Texture(
            kind, c1, c2, (_wave(freq, angle, phase[0]),), threshold=rng.uniform(-0.5, 0.5)
        )
    if kind == "checks":
        freq = rng.uniform(5, 14)
        waves = (_wave(freq, angle, phase[0]), _wave(freq, angle + np.pi / 2, phase[1]))
        amp0 = (0.0,) + waves[0][1:]
        amp1 = (0.0,) + waves[1][1:]
        return Texture(kind, c1, c2, (amp0, amp1), product=1.0, threshold=0.0)
    if kind == "dots":
        freq = rng.uniform(7, 16)
        # cos + cos on a square lattice is above ~1.2 only in round spots around the lattice points.
        waves = (_wave(freq, angle, np.pi / 2), _wave(freq, angle + np.pi / 2, np.pi / 2))
        return Texture(kind, c1, c2, waves, threshold=rng.uniform(0.9, 1.4))
    if kind == "print":
        freqs = rng.uniform(5, 12, size=3)
        angles = rng.uniform(0, np.pi, size=3)
        waves = tuple(_wave(f, a, ph) for f, a, ph in zip(freqs, angles, phase, strict=True))
        return Texture(kind, c1, c2, waves, threshold=rng.uniform(0.6, 1.2))
    raise ValueError(f"kind={kind!r} must be one of {TEXTURE_KINDS}")


def _solid(colour) -> Texture:
    colour = tuple(float(np.clip(c, 0, 1)) for c in colour)
    return Texture("solid", colour, colour)


def sample_person(rng: np.random.Generator) -> Person:
    """Body shape and outfit for one pair; roughly half the people are built and dressed femininely."""
    u = rng.uniform
    feminine = rng.random() < 0.5
    build = u(0.9, 1.15)  # limb thickness
    shoulder = u(0.095, 0.11) if feminine else u(0.11, 0.125)
    hip_half = u(0.075, 0.085) if feminine else u(0.068, 0.078)
    thigh_w = u(0.045, 0.055) * build
    skin = np.array(_SKIN[rng.integers(len(_SKIN))]) * u(0.95, 1.03)
    hair = np.array(_HAIR[rng.integers(len(_HAIR))])

    bottoms = rng.choice(
        ["trousers", "shorts", "skirt", "dress"],
        p=[0.45, 0.15, 0.2, 0.2] if feminine else [0.75, 0.25, 0.0, 0.0],
    )
    top = sample_texture(rng)
    bottom = top if bottoms == "dress" else sample_texture(rng)
    legwear = (
        _solid(skin)
        if rng.random() < 0.7
        else sample_texture(rng, rng.choice(["solid", "stripes"]))
    )
    shoes = sample_texture(rng, "solid", colour=np.array(sample_colour(rng)) * u(0.4, 1.0))
    hair_tex = Texture(
        "stripes",
        tuple(hair),
        tuple(np.clip(hair * 0.85 + 0.02, 0, 1)),
        (_wave(u(50, 70), np.pi / 2, u(0, 6.3)),),
        threshold=0.0,
    )
    textures = [None] * N_SLOTS
    textures[0] = _solid(skin)
    textures[1] = hair_tex
    textures[2] = top
    textures[3] = bottom
    textures[4] = shoes
    textures[5] = legwear
    textures[6] = _solid((0.12, 0.08, 0.07))
    textures[7] = _solid(skin * np.array([0.8, 0.55, 0.55]))
    grey = u(0.82, 1.0)
    background = tuple(float(np.clip(grey + u(-0.025, 0.025), 0, 1)) for _ in range(3))

    return Person(
        head_rx=u(0.05, 0.056),
        head_ry=u(0.064, 0.071),
        neck_len=u(0.03, 0.04),
        neck_w=u(0.022, 0.028) * (0.9 if feminine else 1.1),
        torso_len=u(0.28, 0.31),
        shoulder_half=shoulder,
        hip_half=hip_half,
        chest_w=shoulder + u(0.01, 0.02),
        waist_pinch=u(0.012, 0.025) if feminine else u(0.0, 0.01),
        hip_w=hip_half + 0.7 * thigh_w,
        torso_depth=u(0.065, 0.08),
        upper_arm=u(0.16, 0.18),
        forearm=u(0.14, 0.155),
        hand=u(0.06, 0.07),
        thigh=u(0.23, 0.25),
        shin=u(0.22, 0.24),
        ankle_h=0.04,
        foot=u(0.085, 0.1),
        arm_w=(u(0.028, 0.033) * build, u(0.022, 0.026) * build, u(0.017, 0.02) * build),
        leg_w=(thigh_w, u(0.033, 0.038) * build, u(0.022, 0.026) * build),
        hand_w=u(0.018, 0.021),
        foot_w=u(0.019, 0.023),
        long_hair=u(0.1, 0.24) if rng.random() < (0.75 if feminine else 0.1) else 0.0,
        hairline=u(0.25, 0.55),
        top_len=u(0.75, 1.0) if bottoms != "dress" else 1.0,
        sleeve=float(rng.choice([0.0, 0.45, 0.6, 1.8, 2.0])),
        bottoms=str(bottoms),
        leg_cover=u(1.75, 2.0) if bottoms == "trousers" else u(0.3, 0.65),
        skirt_len=u(0.12, 0.36),
        skirt_flare=u(0.01, 0.07),
        textures=tuple(textures),
        background=background,
        height_frac=u(0.8, 0.88),
    )


# Arm poses as (probability, abduction, flexion, elbow, twist) ranges in degrees.
_ARM_POSES = (
    (0.40, (4, 20), (-12, 15), (0, 25), (0, 40)),  # hanging, relaxed
    (0.18, (30, 50), (-10, 10), (70, 110), (60, 90)),  # hand on the hip
    (0.14, (0, 20), (20, 50), (60, 120), (50, 90)),  # forearm across the body
    (0.14, (60, 150), (-10, 30), (0, 90), (-90, -30)),  # raised, waving
    (0.14, (5, 35), (35, 80), (0, 40), (-30, 30)),  # reaching forward
)
# Leg poses as (probability, abduction, flexion, knee, toe-out) ranges in degrees.
_LEG_POSES = (
    (0.40, (-3, 8), (-8, 12), (0, 10), (0, 25)),  # standing
    (0.20, (-2, 8), (10, 35), (0, 25), (0, 25)),  # stepping forward
    (0.15, (-2, 8), (-22, -6), (10, 45), (0, 25)),  # stepping back
    (0.10, (-12, -5), (0, 15), (0, 15), (-5, 15)),  # crossing over
    (0.15, (10, 22), (-5, 10), (0, 15), (10, 35)),  # wide stance
)


def _pick(rng: np.random.Generator, table) -> tuple[float, ...]:
    probs = np.array([row[0] for row in table])
    row = table[rng.choice(len(table), p=probs / probs.sum())]
    return tuple(float(np.deg2rad(rng.uniform(lo, hi))) for lo, hi in row[1:])


def sample_yaw(rng: np.random.Generator, views: str) -> float:
    """Body yaw in radians: mostly front, some side and back views as in DeepFashion, or front only."""
    if views == "front":
        return float(np.deg2rad(rng.uniform(-35, 35)))
    kind = rng.choice(3, p=[0.55, 0.15, 0.30])
    if kind == 0:
        return float(np.deg2rad(np.clip(rng.normal(0, 20), -45, 45)))
    if kind == 1:
        return float(np.deg2rad(rng.choice([-1, 1]) * rng.uniform(65, 110)))
    return float(np.deg2rad(180 + rng.uniform(-35, 35)))


def sample_pose(rng: np.random.Generator, views: str = "mixed") -> Pose:
    """A plausible standing pose: arms and legs from a few pose families, one leg bears the weight."""
    deg = np.deg2rad
    legs = [_pick(rng, _LEG_POSES[:1]), _pick(rng, _LEG_POSES)]
    if rng.random() < 0.5:  # which leg bears the weight
        legs.reverse()
    return Pose(
        yaw=sample_yaw(rng, views),
        lean=float(deg(rng.uniform(-6, 6))),
        bend=float(deg(rng.uniform(-4, 10))),
        head_tilt=float(deg(rng.uniform(-12, 12))),
        head_turn=float(deg(rng.uniform(-30, 30))),
        head_nod=float(deg(rng.uniform(-10, 15))),
        arms=(_pick(rng, _ARM_POSES), _pick(rng, _ARM_POSES)),
        legs=tuple(legs),
        x_offset=float(rng.uniform(-0.06, 0.06)),
        ground=float(rng.uniform(0.94, 0.985)),
    )
