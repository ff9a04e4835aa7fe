"""Synthetic fashion dataset in the competition layout.

Draws garment silhouettes procedurally (PIL polygons + numpy fabric patterns) and labels them
like a real catalogue: one category per image plus colour / pattern / parts / gender
attributes, with skewed and correlated frequencies. Writes ``train.csv``, ``test.csv``,
``schema.json`` and ``images/{train,test}/NNNNN.jpg``.

Every image has its own RNG seeded from (seed, split, index), so the output is deterministic
and identical however the work is spread over processes.

    python -m fashioncomp.synth --out data/synth --n-train 1500 --n-test 500 --seed 0
"""
from __future__ import annotations

import argparse
import colorsys
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Point = tuple[float, float]
Poly = list[Point]
RGB = tuple[int, int, int]

SUPERSAMPLE = 2  # draw at 2x and box-downsample: cheap anti-aliasing
JPEG_QUALITY = 92
MIN_IMAGE_SIZE = 16
SPLIT_CODES = {"train": 0, "test": 1}  # part of the per-image seed, so splits never share images
DATASET_MARKERS = ("train.csv", "test.csv", "schema.json")

# ------------------------------------------------------------------------------------ labels

# Category -> relative frequency; largest / smallest = 5, a long tail like a real catalogue.
CATEGORY_WEIGHTS: dict[str, float] = {
    "tshirt": 20, "shirt": 11, "dress": 13, "trousers": 16, "shorts": 9,
    "skirt": 8, "shoe": 10, "bag": 7, "hat": 4,
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_WEIGHTS)

COLOURS: dict[str, RGB] = {
    "black": (25, 25, 28), "white": (246, 246, 243), "grey": (130, 130, 134),
    "red": (200, 32, 38), "blue": (36, 72, 190), "green": (40, 150, 64),
    "yellow": (242, 206, 44), "pink": (242, 140, 182),
}
# Real garments come in colours the label set does not name; those images get no colour label.
OFF_LIST_COLOURS: tuple[RGB, ...] = ((122, 52, 150), (238, 128, 30), (118, 76, 42), (22, 138, 140))
PATTERNS: tuple[str, ...] = ("striped", "dotted", "checked")
PARTS: tuple[str, ...] = ("collar", "pocket", "buttons", "logo", "belt")
GENDERS: tuple[str, ...] = ("men", "women")

ATTRIBUTE_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "colour": ("multiclass", tuple(COLOURS)),
    "pattern": ("multiclass", PATTERNS),
    "parts": ("multilabel", PARTS),
    "gender": ("multiclass", GENDERS),
}
ATTRIBUTES: tuple[str, ...] = tuple(a for _, names in ATTRIBUTE_GROUPS.values() for a in names)
ATTRIBUTE_INDEX: dict[str, int] = {name: i for i, name in enumerate(ATTRIBUTES)}

# Per category: weights over the named colours in COLOURS order, then "off-list".
COLOUR_WEIGHTS: dict[str, tuple[float, ...]] = {
    #            black white grey red  blue green yellow pink other
    "tshirt":   (3.0, 3.0, 2.0, 2.0, 3.0, 1.5, 1.0, 1.0, 1.5),
    "shirt":    (2.0, 4.0, 2.0, 1.0, 4.0, 1.0, 0.5, 0.7, 1.0),
    "dress":    (3.0, 1.0, 0.5, 3.0, 1.5, 1.0, 1.0, 3.0, 1.5),
    "trousers": (4.0, 0.7, 3.0, 0.3, 5.0, 0.7, 0.2, 0.2, 1.5),
    "shorts":   (2.0, 1.0, 2.0, 0.7, 3.0, 1.5, 1.0, 0.7, 1.5),
    "skirt":    (3.0, 1.0, 1.5, 2.0, 2.0, 1.0, 1.0, 2.5, 1.0),
    "shoe":     (4.0, 3.0, 2.0, 1.0, 1.0, 0.5, 0.3, 0.5, 2.0),
    "bag":      (4.0, 1.0, 1.0, 2.0, 1.0, 0.5, 0.5, 1.0, 2.5),
    "hat":      (3.0, 1.0, 2.0, 1.5, 2.0, 1.0, 1.0, 1.0, 1.5),
}
# Per category: weights over (solid, striped, dotted, checked); solid carries no pattern label.
PATTERN_WEIGHTS: dict[str, tuple[float, ...]] = {
    "tshirt": (6, 2.5, 1, 0.5), "shirt": (4, 2, 0.5, 3), "dress": (4, 1.5, 2.5, 1),
    "trousers": (8, 0.7, 0.2, 1), "shorts": (6, 1.5, 0.5, 1.5), "skirt": (4, 1.5, 2, 2),
    "shoe": (10, 0.5, 0.3, 0.2), "bag": (6, 1.5, 0.7, 1.5), "hat": (6, 1.5, 0.7, 1),
}
# Per category: weights over (men, women, unisex); unisex carries no gender label.
GENDER_WEIGHTS: dict[str, tuple[float, ...]] = {
    "tshirt": (0.45, 0.35, 0.2), "shirt": (0.55, 0.35, 0.1), "dress": (0, 0.97, 0.03),
    "trousers": (0.5, 0.4, 0.1), "shorts": (0.45, 0.4, 0.15), "skirt": (0, 0.97, 0.03),
    "shoe": (0.4, 0.4, 0.2), "bag": (0.1, 0.6, 0.3), "hat": (0.35, 0.35, 0.3),
}
# Per category: probability of each part; parts that make no sense for a category are absent.
PART_PROBS: dict[str, dict[str, float]] = {
    "tshirt": {"collar": 0.15, "pocket": 0.2, "buttons": 0.1, "logo": 0.35},
    "shirt": {"collar": 0.75, "pocket": 0.35, "buttons": 0.6, "logo": 0.1},
    "dress": {"collar": 0.2, "pocket": 0.1, "buttons": 0.25, "belt": 0.35},
    "trousers": {"pocket": 0.6, "belt": 0.4},
    "shorts": {"pocket": 0.5, "belt": 0.25, "logo": 0.1},
    "skirt": {"pocket": 0.15, "buttons": 0.15, "belt": 0.3},
    "shoe": {"logo": 0.5},
    "bag": {"pocket": 0.45, "buttons": 0.2, "logo": 0.3},
    "hat": {"logo": 0.45},
}


@dataclass(frozen=True)
class Labels:
    category: str
    colour: str | None  # None: an off-list colour
    pattern: str | None  # None: solid
    parts: frozenset[str]
    gender: str | None  # None: unisex

    def attribute_indices(self) -> list[int]:
        names = [self.colour, self.pattern, self.gender, *self.parts]
        return sorted(ATTRIBUTE_INDEX[n] for n in names if n is not None)


def _choice(rng: np.random.Generator, options: Sequence, weights: Sequence[float]):
    w = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def sample_labels(rng: np.random.Generator) -> Labels:
    """Draw one image's labels; later draws depend on earlier ones, as in real catalogues."""
    category = _choice(rng, CATEGORIES, list(CATEGORY_WEIGHTS.values()))
    gender = _choice(rng, (*GENDERS, None), GENDER_WEIGHTS[category])

    colour_w = np.array(COLOUR_WEIGHTS[category])
    pink = list(COLOURS).index("pink")
    colour_w[pink] *= {"women": 2.5, "men": 0.25}.get(gender, 1.0)
    colour = _choice(rng, (*COLOURS, None), colour_w)

    pattern_w = np.array(PATTERN_WEIGHTS[category], dtype=float)
    if gender == "women":
        pattern_w[2] *= 2.0  # dotted
    pattern = _choice(rng, (None, *PATTERNS), pattern_w)

    probs = dict(PART_PROBS[category])
    parts = set()
    for part in PARTS:  # fixed order keeps the RNG stream deterministic
        p = probs.get(part, 0.0)
        if part == "buttons" and "collar" in probs:
            p = 0.8 if "collar" in parts else 0.4 * p  # collars come with button plackets (polos, shirts)
        if p > 0 and rng.random() < p:
            parts.add(part)
    return Labels(category, colour, pattern, frozenset(parts), gender)


# ---------------------------------------------------------------------------------- geometry


@dataclass
class Garment:
    """A silhouette in unit box coordinates (u right, v down, both 0..1) plus part anchors."""

    aspect: float  # box width / height
    body: list[Poly]  # filled with the fabric and outlined
    straps: list[tuple[Poly, float]] = field(default_factory=list)  # fabric polylines, (points, width)
    trim: list[tuple[Poly, str]] = field(default_factory=list)  # (polygon, trim kind) drawn over the body
    neck: tuple[float, float, float] | None = None  # (u, v, half width)
    placket: tuple[Point, Point, int] | None = None  # (top, bottom, number of buttons)
    pockets: list[tuple[float, float, float, float]] = field(default_factory=list)  # (u0, v0, u1, v1)
    logo: tuple[float, float, float] | None = None  # (u, v, radius as a fraction of box width)
    waist: tuple[float, float, float] | None = None  # (v, u_left, u_right)


def _mirror(left: Poly) -> Poly:
    """Left half outline (top centre, down the left side, to the bottom centre) -> full polygon."""
    return left + [(1.0 - u, v) for u, v in reversed(left)]


def _arc(cu: float, cv: float, ru: float, rv: float, a0: float, a1: float, n: int = 20) -> Poly:
    """Elliptic arc as points (degrees; v grows downwards, so 180..360 is the upper half)."""
    angles = np.radians(np.linspace(a0, a1, n))
    return [(cu + ru * math.cos(a), cv + rv * math.sin(a)) for a in angles]


def _tshirt(rng: np.random.Generator, women: bool) -> Garment:
    sleeve = rng.uniform(0.36, 0.46)
    waist = 0.30 if women else 0.25  # fitted cut for women: a visible cue for the gender label
    left = [(0.5, 0.13), (0.38, 0.05), (0.22, 0.09), (0.02, 0.30), (0.12, sleeve),
            (0.25, 0.33), (waist, 0.62), (0.25, 0.96), (0.5, 0.96)]
    return Garment(1.0, [_mirror(left)], neck=(0.5, 0.06, 0.12),
                   placket=((0.5, 0.15), (0.5, 0.34), 3), pockets=[(0.57, 0.20, 0.70, 0.33)],
                   logo=(0.5, 0.55, 0.09))


def _shirt(rng: np.random.Generator, women: bool) -> Garment:
    cuff = rng.uniform(0.80, 0.88)
    waist = 0.31 if women else 0.26
    left = [(0.5, 0.12), (0.40, 0.04), (0.26, 0.07), (0.03, cuff - 0.04), (0.14, cuff),
            (0.26, 0.34), (waist, 0.62), (0.26, 0.98), (0.5, 0.98)]
    return Garment(0.85, [_mirror(left)], neck=(0.5, 0.05, 0.10),
                   placket=((0.5, 0.14), (0.5, 0.90), 5), pockets=[(0.58, 0.20, 0.71, 0.32)],
                   logo=(0.37, 0.26, 0.05))


def _dress(rng: np.random.Generator, women: bool) -> Garment:
    hem = rng.uniform(0.02, 0.12)
    left = [(0.5, 0.12), (0.38, 0.03), (0.31, 0.03), (0.27, 0.20), (0.32, 0.42),
            (hem, 0.97), (0.5, 0.99)]
    return Garment(0.72, [_mirror(left)], neck=(0.5, 0.04, 0.12),
                   placket=((0.5, 0.14), (0.5, 0.37), 3), pockets=[(0.58, 0.56, 0.71, 0.68)],
                   waist=(0.42, 0.32, 0.68))


def _trousers(rng: np.random.Generator, women: bool) -> Garment:
    # Women's cut flares below the knee, men's is straight.
    knee_out, hem_out, knee_in, hem_in = (0.10, 0.0, 0.42, 0.46) if women else (0.06, 0.04, 0.44, 0.44)
    left = [(0.5, 0.02), (0.08, 0.02), (knee_out, 0.55), (hem_out, 0.98), (hem_in, 0.98),
            (knee_in, 0.55), (0.5, 0.30)]
    return Garment(0.5, [_mirror(left)], pockets=[(0.14, 0.10, 0.30, 0.19), (0.70, 0.10, 0.86, 0.19)],
                   waist=(0.055, 0.08, 0.92))


def _shorts(rng: np.random.Generator, women: bool) -> Garment:
    length = 0.80 if women else rng.uniform(0.90, 0.96)
    left = [(0.5, 0.03), (0.07, 0.03), (0.0, length), (0.42, length + 0.02), (0.5, 0.42)]
    return Garment(0.95, [_mirror(left)], pockets=[(0.13, 0.14, 0.30, 0.30), (0.70, 0.14, 0.87, 0.30)],
                   logo=(0.25, 0.58, 0.06), waist=(0.09, 0.07, 0.93))


def _skirt(rng: np.random.Generator, women: bool) -> Garment:
    hem = rng.uniform(0.02, 0.10)
    left = [(0.5, 0.04), (0.26, 0.04), (hem, 0.96), (0.5, 0.98)]
    return Garment(0.85, [_mirror(left)], placket=((0.5, 0.16), (0.5, 0.62), 4),
                   pockets=[(0.60, 0.30, 0.74, 0.45)], waist=(0.09, 0.245, 0.755))


def _shoe(rng: np.random.Generator, women: bool) -> Garment:
    if women:  # pump with a heel block
        upper = [(0.04, 0.16), (0.22, 0.24), (0.45, 0.42), (0.80, 0.55), (0.98, 0.72), (0.95, 0.86),
                 (0.65, 0.87), (0.35, 0.74), (0.18, 0.64), (0.04, 0.64)]
        heel = [(0.05, 0.60), (0.18, 0.60), (0.16, 0.98), (0.09, 0.98)]
        return Garment(1.7, [upper], trim=[(heel, "sole")], logo=(0.30, 0.46, 0.05))
    upper = [(0.05, 0.30), (0.30, 0.22), (0.40, 0.32), (0.62, 0.42), (0.85, 0.50),
             (0.97, 0.62), (0.98, 0.80), (0.04, 0.80)]
    sole = [(0.03, 0.78), (0.99, 0.78), (0.98, 0.92), (0.06, 0.95)]
    return Garment(2.0, [upper], trim=[(sole, "sole")], logo=(0.52, 0.60, 0.07))


def _bag(rng: np.random.Generator, women: bool) -> Garment:
    body = [(0.10, 0.38), (0.90, 0.38), (0.95, 0.96), (0.05, 0.96)]
    if women:  # handbag: arched handle
        straps = [(_arc(0.5, 0.40, 0.20, 0.32, 180, 360), 0.05)]
        trim: list[tuple[Poly, str]] = []
    else:  # messenger bag: wide strap and a darker flap
        straps = [([(0.14, 0.40), (0.22, 0.06), (0.78, 0.06), (0.86, 0.40)], 0.04)]
        trim = [([(0.10, 0.38), (0.90, 0.38), (0.90, 0.56), (0.10, 0.56)], "shade")]
    return Garment(1.0, [body], straps=straps, trim=trim, placket=((0.5, 0.50), (0.5, 0.50), 1),
                   pockets=[(0.30, 0.64, 0.70, 0.88)], logo=(0.78, 0.75, 0.06))


def _hat(rng: np.random.Generator, women: bool) -> Garment:
    if women:  # sun hat: wide brim, small crown, contrasting band
        brim = _arc(0.5, 0.78, 0.48, 0.16, 0, 360, 32)
        crown = _arc(0.5, 0.74, 0.24, 0.52, 180, 360)
        band = [(0.265, 0.60), (0.735, 0.60), (0.74, 0.72), (0.26, 0.72)]
        return Garment(1.4, [brim, crown], trim=[(band, "band")], logo=(0.5, 0.42, 0.05))
    crown = _arc(0.42, 0.80, 0.34, 0.64, 180, 360)  # baseball cap: dome plus a peak
    peak = [(0.62, 0.70), (0.98, 0.77), (0.96, 0.88), (0.55, 0.84)]
    return Garment(1.4, [crown, peak], logo=(0.42, 0.50, 0.07))


SHAPES: dict[str, Callable[[np.random.Generator, bool], Garment]] = {
    "tshirt": _tshirt, "shirt": _shirt, "dress": _dress, "trousers": _trousers, "shorts": _shorts,
    "skirt": _skirt, "shoe": _shoe, "bag": _bag, "hat": _hat,
}


@dataclass(frozen=True)
class Pen:
    """Maps unit garment coordinates onto the canvas: scale, then rotate about the box centre."""

    cx: float
    cy: float
    w: float
    h: float
    cos: float
    sin: float

    def xy(self, u: float, v: float) -> Point:
        dx, dy = (u - 0.5) * self.w, (v - 0.5) * self.h
        return (self.cx + self.cos * dx - self.sin * dy, self.cy + self.sin * dx + self.cos * dy)

    def poly(self, points: Iterable[Point]) -> list[Point]:
        return [self.xy(u, v) for u, v in points]


def _place(aspect: float, size: int, rng: np.random.Generator) -> Pen:
    extent = rng.uniform(0.62, 0.86) * size  # the longer side of the garment box
    w, h = (extent, extent / aspect) if aspect >= 1 else (extent * aspect, extent)
    # Jitter the centre within most of the free margin so the garment stays (nearly) in frame.
    cx = size / 2 + rng.uniform(-0.7, 0.7) * (size - w) / 2
    cy = size / 2 + rng.uniform(-0.7, 0.7) * (size - h) / 2
    angle = math.radians(rng.uniform(-12, 12))
    return Pen(cx, cy, w, h, math.cos(angle), math.sin(angle))


# ------------------------------------------------------------------------------------ colour


def _jitter(rgb: RGB, rng: np.random.Generator) -> RGB:
    """Per-image variation of a named colour in HSV, small enough to keep the name right."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    h = (h + rng.normal(0, 0.015)) % 1.0
    s = min(1.0, s * rng.uniform(0.8, 1.1))
    v = min(1.0, v * rng.uniform(0.82, 1.08))
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def _garment_colour(name: str | None, rng: np.random.Generator) -> RGB:
    base = COLOURS[name] if name is not None else OFF_LIST_COLOURS[rng.integers(len(OFF_LIST_COLOURS))]
    return _jitter(base, rng)


def _luma(rgb: Sequence[float]) -> float:
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255


def _shade(rgb: Sequence[float], factor: float) -> RGB:
    return tuple(int(min(255, max(0, c * factor))) for c in rgb)  # type: ignore[return-value]


def _contrast(rgb: RGB) -> RGB:
    """Darker version of light colours, lighter of dark ones (pattern ink, pocket edges)."""
    if _luma(rgb) > 0.45:
        return _shade(rgb, 0.35)
    return tuple(int(0.35 * c + 0.65 * 255) for c in rgb)  # type: ignore[return-value]


ACCENTS: tuple[RGB, ...] = ((250, 250, 250), (20, 20, 20), (220, 30, 30), (250, 210, 30), (30, 80, 210))


def _accent(main: RGB, rng: np.random.Generator) -> RGB:
    """A colour that stands out against the garment, for logos and buttons."""
    far = [a for a in ACCENTS if sum(abs(x - y) for x, y in zip(a, main)) > 200]
    return far[int(rng.integers(len(far)))] if far else ACCENTS[0]


# -------------------------------------------------------------------------------- rendering


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Light studio backdrop with a faint tint and a gentle gradient."""
    base = rng.uniform(214, 244) + rng.normal(0, 4, 3)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    grad = math.cos(theta) * ramp[None, :] + math.sin(theta) * ramp[:, None]
    img = base[None, None, :] + rng.uniform(0, 10) * grad[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _pattern_mask(pattern: str, lu: np.ndarray, lv: np.ndarray, size: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Coverage (0..1) of the secondary colour; kept under half so the main colour dominates."""
    period = rng.uniform(0.085, 0.13) * size
    a, b = lu / period + rng.random(), lv / period + rng.random()
    if pattern == "striped":
        t = b if rng.random() < 0.7 else a  # mostly horizontal stripes
        return ((t % 1.0) < rng.uniform(0.28, 0.4)).astype(np.float32)
    if pattern == "dotted":
        a = a + 0.5 * (np.floor(b) % 2)  # staggered rows
        r = rng.uniform(0.2, 0.27)
        return (((a % 1.0) - 0.5) ** 2 + ((b % 1.0) - 0.5) ** 2 < r * r).astype(np.float32)
    if pattern == "checked":  # gingham: half ink where one band, full ink where both cross
        duty = rng.uniform(0.28, 0.36)
        return 0.5 * ((a % 1.0) < duty) + 0.5 * ((b % 1.0) < duty)
    raise ValueError(f"unknown pattern {pattern!r}")


def _fabric(pattern: str | None, main: RGB, pen: Pen, size: int, rng: np.random.Generator) -> Image.Image:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    # Garment-local coordinates, so stripes and lighting turn with the garment.
    dx, dy = xs - pen.cx, ys - pen.cy
    lu, lv = pen.cos * dx + pen.sin * dy, -pen.sin * dx + pen.cos * dy
    light = 1.0 + (rng.uniform(-0.15, 0.15) * lu + rng.uniform(-0.15, 0.15) * lv) / size
    colour = np.asarray(main, np.float32)[None, None, :] * np.ones((size, size, 1), np.float32)
    if pattern is not None:
        ink = _pattern_mask(pattern, lu, lv, size, rng)[..., None]
        colour = colour * (1 - ink) + np.asarray(_contrast(main), np.float32) * ink
    return Image.fromarray(np.clip(colour * light[..., None], 0, 255).astype(np.uint8))


@dataclass
class PartContext:
    draw: ImageDraw.ImageDraw
    pen: Pen
    garment: Garment
    main: RGB
    line: RGB
    width: int  # outline width in canvas pixels
    rng: np.random.Generator


def _rect(u0: float, v0: float, u1: float, v1: float) -> Poly:
    return [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]


def _paint_collar(c: PartContext) -> None:
    u, v, hw = c.garment.neck  # type: ignore[misc]
    fill = (245, 245, 240) if c.rng.random() < 0.3 else _shade(c.main, 1.25 if _luma(c.main) < 0.5 else 0.85)
    for s in (-1, 1):  # two pointed flaps meeting below the neckline
        flap = [(u + s * (hw + 0.03), v - 0.015), (u + s * 0.01, v + 0.06), (u + s * hw * 0.55, v + 0.15)]
        c.draw.polygon(c.pen.poly(flap), fill=fill, outline=c.line, width=c.width)


def _paint_pocket(c: PartContext) -> None:
    for box in c.garment.pockets:
        c.draw.polygon(c.pen.poly(_rect(*box)), fill=_shade(c.main, 0.85), outline=c.line, width=c.width)


def _paint_buttons(c: PartContext) -> None:
    (u0, v0), (u1, v1), n = c.garment.placket  # type: ignore[misc]
    if n > 1:
        c.draw.line(c.pen.poly([(u0, v0), (u1, v1)]), fill=c.line, width=c.width)
    radius = max(1.6 * SUPERSAMPLE, 0.03 * c.pen.w)
    fill = _accent(c.main, c.rng)
    for t in np.linspace(0, 1, n) if n > 1 else [0.0]:
        x, y = c.pen.xy(u0 + t * (u1 - u0), v0 + t * (v1 - v0))
        c.draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill, outline=c.line)


def _paint_logo(c: PartContext) -> None:
    u, v, r = c.garment.logo  # type: ignore[misc]
    radius = max(2.5 * SUPERSAMPLE, r * c.pen.w)
    x, y = c.pen.xy(u, v)
    fill = _accent(c.main, c.rng)
    if c.rng.random() < 0.5:
        c.draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    else:  # five-pointed star
        pts = [(x + radius * (1 if k % 2 == 0 else 0.45) * math.sin(k * math.pi / 5),
                y - radius * (1 if k % 2 == 0 else 0.45) * math.cos(k * math.pi / 5)) for k in range(10)]
        c.draw.polygon(pts, fill=fill)


def _paint_belt(c: PartContext) -> None:
    v, ul, ur = c.garment.waist  # type: ignore[misc]
    strap = (60, 38, 24) if c.rng.random() < 0.5 else (22, 22, 22)
    c.draw.polygon(c.pen.poly(_rect(ul, v - 0.035, ur, v + 0.035)), fill=strap)
    buckle = _rect(0.455, v - 0.05, 0.545, v + 0.05)
    c.draw.polygon(c.pen.poly(buckle), fill=(205, 200, 185), outline=(70, 70, 70), width=c.width)


PART_PAINTERS: dict[str, Callable[[PartContext], None]] = {
    "collar": _paint_collar, "pocket": _paint_pocket, "buttons": _paint_buttons,
    "logo": _paint_logo, "belt": _paint_belt,
}


def _trim_colour(kind: str, main: RGB, rng: np.random.Generator) -> RGB:
    if kind == "shade":
        return _shade(main, 0.75)
    if kind == "sole":
        return (238, 236, 230) if rng.random() < 0.6 else (35, 32, 30)
    return ACCENTS[int(rng.integers(len(ACCENTS)))]  # "band"


def render(labels: Labels, rng: np.random.Generator, image_size: int) -> Image.Image:
    """Draw one garment matching ``labels``; all randomness comes from ``rng``."""
    size = image_size * SUPERSAMPLE
    canvas = Image.fromarray(_background(rng, size))
    garment = SHAPES[labels.category](rng, labels.gender == "women")
    pen = _place(garment.aspect, size, rng)
    main = _garment_colour(labels.colour, rng)

    mask = Image.new("L", (size, size), 0)
    mask_draw = ImageDraw.Draw(mask)
    for poly in garment.body:
        mask_draw.polygon(pen.poly(poly), fill=255)
    for points, width in garment.straps:
        mask_draw.line(pen.poly(points), fill=255, width=max(1, round(width * pen.w)), joint="curve")
    canvas.paste(_fabric(labels.pattern, main, pen, size, rng), mask=mask)

    draw = ImageDraw.Draw(canvas)
    line = _shade(main, 0.55) if _luma(main) > 0.2 else (70, 70, 70)
    width = max(1, round(size / 64))
    for poly in garment.body:
        draw.polygon(pen.poly(poly), outline=line, width=width)
    for poly, kind in garment.trim:
        draw.polygon(pen.poly(poly), fill=_trim_colour(kind, main, rng), outline=line, width=width)
    ctx = PartContext(draw, pen, garment, main, line, width, rng)
    for part in PARTS:  # fixed order: belts over pockets, logos over fabric
        if part in labels.parts:
            PART_PAINTERS[part](ctx)

    img = canvas.resize((image_size, image_size), Image.Resampling.BOX)
    return _degrade(img, rng)


def _degrade(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Mild camera blur and sensor noise, so pixels are not perfectly clean."""
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7) * img.width / 64))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(1.5, 5.0), (img.height, img.width, 3))
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent stream per image: reproducible and independent of process scheduling."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))


def make_example(seed: int, split: str, index: int, image_size: int) -> tuple[Labels, Image.Image]:
    rng = image_rng(seed, split, index)
    labels = sample_labels(rng)
    return labels, render(labels, rng, image_size)


# ------------------------------------------------------------------------------------ output


@dataclass(frozen=True)
class _Job:
    root: str
    split: str
    index: int
    file_path: str  # relative to the dataset root
    seed: int
    image_size: int


def _run_job(job: _Job) -> Labels:
    labels, img = make_example(job.seed, job.split, job.index, job.image_size)
    img.save(Path(job.root) / job.file_path, "JPEG", quality=JPEG_QUALITY)
    return labels


def schema_dict() -> dict:
    return {
        "categories": list(CATEGORIES),
        "attributes": list(ATTRIBUTES),
        "attribute_groups": {
            name: {"type": gtype, "attributes": list(members)}
            for name, (gtype, members) in ATTRIBUTE_GROUPS.items()
        },
    }


def _jobs(root: Path, split: str, n: int, seed: int, image_size: int) -> list[_Job]:
    digits = max(5, len(str(n)))
    return [_Job(str(root), split, i, f"images/{split}/{i:0{digits}d}.jpg", seed, image_size)
            for i in range(1, n + 1)]


def _default_workers(n_images: int) -> int:
    # Process start-up costs more than it saves on small sets.
    return 1 if n_images < 200 else max(1, min(os.cpu_count() or 1, 8))


def _write_dataset(root: Path, n_train: int, n_test: int, seed: int, image_size: int, workers: int) -> None:
    for split in SPLIT_CODES:
        (root / "images" / split).mkdir(parents=True)
    train, test = _jobs(root, "train", n_train, seed, image_size), _jobs(root, "test", n_test, seed, image_size)
    jobs = train + test
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            labels = list(pool.map(_run_job, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    else:
        labels = [_run_job(job) for job in jobs]

    with open(root / "train.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file_path", "category_label", "attribute_label"])
        for job, lab in zip(train, labels):
            writer.writerow([job.file_path, CATEGORIES.index(lab.category),
                             " ".join(map(str, lab.attribute_indices()))])
    with open(root / "test.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file_path"])
        writer.writerows([job.file_path] for job in test)
    (root / "schema.json").write_text(json.dumps(schema_dict(), indent=2) + "\n")


def _check_target(out: Path, force: bool) -> None:
    """Raise FileExistsError unless ``out`` may be (re)placed."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if not any(out.iterdir()):
        return
    if not any((out / name).exists() for name in DATASET_MARKERS):
        # Never wipe an unrelated directory, --force or not.
        raise FileExistsError(f"{out} is a non-empty directory that is not a dataset; refusing to replace it")
    if not force:
        raise FileExistsError(f"{out} already holds a dataset; use --force (force=True) to replace it")


def _move_into_place(tmp: Path, out: Path, force: bool) -> None:
    _check_target(out, force)  # again: something may have appeared while we were generating
    if out.exists() and any(out.iterdir()):
        old = tmp.with_name(tmp.name + "-old")
        os.rename(out, old)  # two renames keep the window without a dataset at `out` tiny
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)


def generate_dataset(out_dir: Path | str, n_train: int, n_test: int, seed: int = 0,
                     image_size: int = 64, force: bool = False, workers: int | None = None) -> Path:
    """Write a synthetic dataset to ``out_dir`` atomically and return its path.

    Raises FileExistsError if ``out_dir`` already holds a dataset and ``force`` is false, and
    ValueError for impossible arguments. ``workers`` defaults to the CPU count for large sets.
    """
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train} and {n_test}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
    out = Path(out_dir).absolute()
    _check_target(out, force)  # fail before spending time on images
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build next to `out` (same filesystem) so the final rename is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the dataset should not be
        _write_dataset(tmp, n_train, n_test, seed, image_size,
                       workers if workers is not None else _default_workers(n_train + n_test))
        _move_into_place(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.synth",
                                     description="Write a synthetic fashion dataset in the competition layout.")
    parser.add_argument("--out", required=True, type=Path, help="dataset directory to create")
    parser.add_argument("--n-train", type=int, default=1500, help="labelled training images (default 1500)")
    parser.add_argument("--n-test", type=int, default=500, help="unlabelled test images (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=64, help="square image side in pixels (default 64)")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count for large sets)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        out = generate_dataset(args.out, args.n_train, args.n_test, args.seed, args.image_size,
                               args.force, args.workers)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.n_train} train + {args.n_test} test images to {out} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
