"""Rasterising a synthetic person: each part in its own frame, textured, shaded, composited back to front.

For every part the renderer takes the pixels of the part's bounding box, maps them into the part's
local frame (``s`` along the bone, ``t`` across it), evaluates a rounded tapered box as a signed
distance (in pixels, so edges are antialiased over one pixel at every resolution) and the garment
texture at ``(s, t)``. Because the texture is a function of the local frame, it moves and turns with
the limb. Parts are composited with ``over`` in depth order. All work is whole-tensor torch on the
part's box; Python loops only over the ~20 parts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gpa_lib.pose.data.body import Part, Person, Texture


class _TextureCache:
    """Colour tensors of a person's textures, built once per image instead of once per part."""

    def __init__(self, textures: Sequence[Texture]):
        self.textures = textures
        self.colours = [
            (
                torch.tensor(t.colour1, dtype=torch.float32)[:, None, None],
                torch.tensor(t.colour2, dtype=torch.float32)[:, None, None],
            )
            for t in textures
        ]

    def evaluate(self, slot: int, s: torch.Tensor, t: torch.Tensor, pixel: float) -> torch.Tensor:
        """Texture ``slot`` at local coordinates ``s, t`` ``(h, w)`` in body units -> colours ``(3, h, w)``.

        ``pixel`` is the size of one pixel in body units, the width over which a pattern edge blends.
        """
        tex = self.textures[slot]
        c1, c2 = self.colours[slot]
        if tex.kind == "solid" or not tex.waves:
            return c1.expand(3, *s.shape)
        sines = [torch.sin(s * ks + t * kt + phase) for _, ks, kt, phase in tex.waves]
        g = torch.full_like(s, -tex.threshold)
        grad = 0.0  # a bound on |grad g|, so that the 0 -> 1 blend is about one pixel wide
        for (amp, ks, kt, _), sine in zip(tex.waves, sines, strict=True):
            if amp:
                g = g + amp * sine
                grad += abs(amp) * math.hypot(ks, kt)
        if tex.product:
            g = g + tex.product * sines[0] * sines[1]
            grad += abs(tex.product) * max(
                math.hypot(*tex.waves[0][1:3]), math.hypot(*tex.waves[1][1:3])
            )
        mix = (0.5 + g / max(grad * pixel, 1e-6)).clamp(0, 1)  # (h, w)
        return c1 + (c2 - c1) * mix


def _hair_mask(part: Part, person: Person, s, t, length: float) -> torch.Tensor:
    """Where the head shows hair rather than face, ``(h, w)`` in [0, 1], from the head's 3D normal.

    The head is treated as an ellipsoid: a pixel's camera-frame normal follows from its offset to the
    head centre, and the head rotation takes it into the head frame, where hair covers the crown
    above ``person.hairline`` and, behind the ears, down to the nape.
    """
    uy, ux = (part.b - part.a) / max(length, 1e-6)
    rx, ry = part.w0, length / 2 + part.ext0
    n_right = -t / rx
    n_up = -(s - length / 2) / ry
    n_out = (1 - n_right**2 - n_up**2).clamp_min(0).sqrt()
    basis = np.array([[uy, -ux, 0.0], [ux, uy, 0.0], [0.0, 0.0, 1.0]])  # columns: right, up, out
    m = part.head_rotation.T @ basis  # camera-aligned 2D frame -> head frame
    n_y = m[1, 0] * n_right + m[1, 1] * n_up + m[1, 2] * n_out
    n_z = m[2, 0] * n_right + m[2, 1] * n_up + m[2, 2] * n_out
    sharp = rx  # normals change by about 1/rx per pixel: blend over one pixel
    crown = (0.5 + (n_y - person.hairline) * sharp).clamp(0, 1)
    back, nape = (0.15, -0.95) if person.long_hair > 0 else (-0.25, -0.55)
    behind = torch.minimum(
        (0.5 + (back - n_z) * sharp).clamp(0, 1), (0.5 + (n_y - nape) * sharp).clamp(0, 1)
    )
    return torch.maximum(crown, behind)


@dataclass(frozen=True)
class SurfaceMap:
    """Which part each pixel shows, and where on that part's texture frame (pixels).

    ``owner`` (H, W) long: index into the drawn parts of the topmost part that covers at least half
    of the pixel (later parts win), -1 for background. ``s`` and ``t`` (H, W) float32: the pixel's
    texture coordinates on that part, along the bone (with the part's ``s_offset``) and across it,
    in pixels; 0 on the background. Two pixels with the same part name and the same ``(s, t)`` show
    the same point of the same garment (the texture is a function of ``(s, t)`` only).
    """

    owner: torch.Tensor
    s: torch.Tensor
    t: torch.Tensor


def _draw_part(
    part: Part,
    person: Person,
    cache: _TextureCache,
    scale: float,
    canvas: torch.Tensor,
    cover: torch.Tensor,
    surface: SurfaceMap | None = None,
    index: int = -1,
) -> None:
    """Composite one part onto ``canvas`` (3, H, W) and its coverage onto ``cover`` (H, W), in place.

    With ``surface``, the pixels the part covers by at least half get ``index`` as their owner and
    the part's texture coordinates.
    """
    height, width = cover.shape
    axis = part.b - part.a
    length = float(np.linalg.norm(axis))
    u = axis / length if length > 1e-6 else np.array([1.0, 0.0])
    reach = max(part.w0, part.w1) + max(part.bulge, 0.0) + 1.5
    ends = np.stack([part.a - u * part.ext0, part.b + u * part.ext1])
    y0, x0 = np.floor(ends.min(axis=0) - reach).astype(int)
    y1, x1 = np.ceil(ends.max(axis=0) + reach).astype(int) + 1
    y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
    if y0 >= y1 or x0 >= x1:
        return

    dy = torch.arange(y0, y1, dtype=torch.float32) - float(part.a[0])  # (h,)
    dx = torch.arange(x0, x1, dtype=torch.float32) - float(part.a[1])  # (w,)
    s = dy[:, None] * float(u[0]) + dx[None, :] * float(u[1])  # (h, w) along the bone, px
    t = dy[:, None] * float(u[1]) - dx[None, :] * float(u[0])  # (h, w) across the bone, px

    # Signed distance to a rounded box whose half-width tapers from w0 to w1 with a bulge.
    along = (s / max(length, 1e-6)).clamp(0, 1)
    half_width = part.w0 + (part.w1 - part.w0) * along + 4 * part.bulge * along * (1 - along)
    rounding = min(part.rounding, part.w0, part.w1)
    half_length = (length + part.ext0 + part.ext1) / 2
    middle = (length + part.ext1 - part.ext0) / 2
    q_t = t.abs() - half_width + rounding
    q_s = (s - middle).abs() - half_length + rounding
    sdf = torch.sqrt(q_t.clamp_min(0) ** 2 + q_s.clamp_min(0) ** 2)
    sdf = sdf + torch.maximum(q_t, q_s).clamp_max(0) - rounding
    alpha = (0.5 - sdf).clamp(0, 1)  # (h, w) pixel coverage, one-pixel antialiasing

    pixel = 1.0 / scale
    s_tex = s + part.s_offset
    colour = cache.evaluate(part.slot_a, s_tex * pixel, t * pixel, pixel)  # (3, h, w)
    if part.head_rotation is not None:
        mix = _hair_mask(part, person, s, t, length)
        colour = (
            cache.evaluate(part.slot_b, s_tex * pixel, t * pixel, pixel) * (1 - mix) + colour * mix
        )
    elif part.cut < math.inf:
        colour_b = cache.evaluate(part.slot_b, s_tex * pixel, t * pixel, pixel)
        if part.cut == -math.inf:
            colour = colour_b
        else:
            mix = (0.5 + part.cut - s_tex).clamp(0, 1)  # slot_a before the cut, slot_b after
            colour = colour_b + (colour - colour_b) * mix
    if part.shade:
        # Darker towards the silhouette, as a lit cylinder: separates overlapping same-colour parts.
        across = (t / half_width).clamp(-1, 1)
        colour = colour * (1 - part.shade * across**2)

    region = canvas[:, y0:y1, x0:x1]
    region.mul_(1 - alpha).add_(colour * alpha)
    cover[y0:y1, x0:x1].mul_(1 - alpha).add_(alpha)
    if surface is not None:
        shown = alpha >= 0.5  # (h, w)
        surface.owner[y0:y1, x0:x1][shown] = index
        surface.s[y0:y1, x0:x1][shown] = s_tex[shown]
        surface.t[y0:y1, x0:x1][shown] = t[shown]


def render_parts(
    parts: Sequence[Part],
    person: Person,
    size: tuple[int, int],
    scale: float,
    *,
    surface: bool = False,
):
    """Draw ``parts`` (sorted back to front) of ``person`` on its background.

    ``size`` is ``(H, W)`` pixels and ``scale`` pixels per body unit. Returns the image ``(3, H, W)``
    in [0, 1] and the coverage ``(H, W)`` in [0, 1]; with ``surface`` also the :class:`SurfaceMap`
    (owners index ``parts``).
    """
    height, width = size
    canvas = torch.tensor(person.background, dtype=torch.float32)[:, None, None].repeat(
        1, height, width
    )
    cover = torch.zeros(height, width)
    cache = _TextureCache(person.textures)
    surface_map = None
    if surface:
        surface_map = SurfaceMap(
            torch.full((height, width), -1, dtype=torch.long),
            torch.zeros(height, width),
            torch.zeros(height, width),
        )
    for index, part in enumerate(parts):
        _draw_part(part, person, cache, scale, canvas, cover, surface_map, index)
    if surface:
        return canvas.clamp_(0, 1), cover, surface_map
    return canvas.clamp_(0, 1), cover
