"""Training augmentation (albumentations), built from the config's `augment` section.

Hue and saturation are never jittered: colour is a label. Geometry fills with white, the
background of product photos.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import albumentations as A

WHITE = (255, 255, 255)


def create_train_transform(aug: dict[str, Any], seed: int | None = None) -> "A.Compose":
    # imported here: only the stages that train need albumentations and OpenCV; oof, thresholds,
    # predict, submission and report start without them (about 0.4 s each)
    import albumentations as A
    import cv2

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
    if aug["brightness_contrast"] > 0:
        steps.append(A.RandomBrightnessContrast(0.15, 0.15, p=aug["brightness_contrast"]))
    if aug["coarse_dropout"] > 0:
        steps.append(A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.25),
                                     hole_width_range=(0.1, 0.25), fill=WHITE, p=aug["coarse_dropout"]))
    return A.Compose(steps, seed=seed)
