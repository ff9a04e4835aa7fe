"""Training augmentation (albumentations), built from the config's `augment` section.

Hue and saturation are never jittered: colour is a label. Geometry fills with white, the
background of product photos.

`augment.preset` picks the geometric steps from AUGMENT_PRESETS:

    default      horizontal flip (`hflip`) and a mild affine (`shift_scale_rotate`, `max_shift`,
                 `max_scale`, `max_rotate`)
    report       the iMaterialist report's Keras ImageDataGenerator: every image rotated by up to
                 45 degrees, shifted by up to 25 % of its width and height, zoomed by 0.8-1.2 on each
                 axis, and flipped horizontally with probability 0.5 (filled with white, not Keras's
                 nearest-pixel fill)
    random_crop  flip + random resized crop (the Query2Label project's training views): a crop of
                 `crop_min_area`..100 % of the area, aspect 3/4..4/3, resized back to the input size

`brightness_contrast` and `coarse_dropout` apply after any preset (0 turns them off).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

from fashioncomp.config import ConfigError

if TYPE_CHECKING:
    import albumentations as A

WHITE = (255, 255, 255)
NO_UPDATE_CHECK_ENV = "NO_ALBUMENTATIONS_UPDATE"  # albumentations' switch for its update check

# name -> (albumentations module, cv2 module, augment section, image side) -> geometric steps
Preset = Callable[[Any, Any, dict[str, Any], "int | None"], list["A.BasicTransform"]]
AUGMENT_PRESETS: dict[str, Preset] = {}


def register_preset(name: str) -> Callable[[Preset], Preset]:
    def wrap(fn: Preset) -> Preset:
        AUGMENT_PRESETS[name] = fn
        return fn

    return wrap


@register_preset("default")
def _default(A: Any, cv2: Any, aug: dict[str, Any], image_size: int | None) -> list["A.BasicTransform"]:
    steps: list["A.BasicTransform"] = []
    if aug["hflip"] > 0:
        steps.append(A.HorizontalFlip(p=aug["hflip"]))
    if aug["shift_scale_rotate"] > 0:
        steps.append(
            A.Affine(
                scale=(1 - aug["max_scale"], 1 + aug["max_scale"]),
                translate_percent=(-aug["max_shift"], aug["max_shift"]),
                rotate=(-aug["max_rotate"], aug["max_rotate"]),
                border_mode=cv2.BORDER_CONSTANT,
                fill=WHITE,
                p=aug["shift_scale_rotate"],
            )
        )
    return steps


@register_preset("report")
def _report(A: Any, cv2: Any, aug: dict[str, Any], image_size: int | None) -> list["A.BasicTransform"]:
    # ImageDataGenerator(rotation_range=45, width_shift_range=0.25, height_shift_range=0.25,
    # zoom_range=0.2, horizontal_flip=True): every image gets a random transform, zoom per axis
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(
            rotate=(-45, 45),
            translate_percent={"x": (-0.25, 0.25), "y": (-0.25, 0.25)},
            scale={"x": (0.8, 1.2), "y": (0.8, 1.2)},
            border_mode=cv2.BORDER_CONSTANT,
            fill=WHITE,
            p=1.0,
        ),
    ]


@register_preset("random_crop")
def _random_crop(A: Any, cv2: Any, aug: dict[str, Any], image_size: int | None) -> list["A.BasicTransform"]:
    if image_size is None:
        raise ValueError("augment.preset random_crop needs the image size to resize its crops to")
    return [
        A.HorizontalFlip(p=0.5),
        A.RandomResizedCrop(size=(image_size, image_size), scale=(aug["crop_min_area"], 1.0), p=1.0),
    ]


def check_preset(name: str) -> None:
    if name not in AUGMENT_PRESETS:
        raise ConfigError(f"augment.preset must be one of {', '.join(AUGMENT_PRESETS)}, got {name!r}")


def create_train_transform(aug: dict[str, Any], seed: int | None = None, image_size: int | None = None) -> "A.Compose":
    """The training transform; `image_size` is the side of the (square) images it gets."""
    check_preset(aug["preset"])
    # imported here: only the stages that train need albumentations and OpenCV; oof, thresholds,
    # predict, submission and report start without them (about 0.4 s each)
    # albumentations asks PyPI for a newer version on import; offline (a Kaggle kernel) that prints
    # "Error fetching version info" in every training stage. A value the user set is kept.
    os.environ.setdefault(NO_UPDATE_CHECK_ENV, "1")
    import albumentations as A
    import cv2

    steps = AUGMENT_PRESETS[aug["preset"]](A, cv2, aug, image_size)
    if aug["brightness_contrast"] > 0:
        steps.append(A.RandomBrightnessContrast(0.15, 0.15, p=aug["brightness_contrast"]))
    if aug["coarse_dropout"] > 0:
        steps.append(A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.25),
                                     hole_width_range=(0.1, 0.25), fill=WHITE, p=aug["coarse_dropout"]))
    return A.Compose(steps, seed=seed)
