"""Augmentation strength: one search dimension in [0, 1] for several augment fields.

Small or imbalanced datasets (a retinal-image grading set, a one-digit-against-the-rest task)
are sensitive to how strongly images are distorted, and searching four coupled fields
separately spends trials on incoherent mixes (heavy RandAugment with no crop jitter). With
`augment.strength: s` set, the fields below follow s linearly, from no distortion at 0 to
timm's ImageNet defaults at 1:

| field                  | s = 0 | s = 0.5 | s = 1 | rule                 |
|------------------------|-------|---------|-------|----------------------|
| randaugment_layers     | 0     | 2       | 3     | round(3 s)           |
| randaugment_magnitude  | 0     | 5       | 10    | 10 s                 |
| crop_scale_min         | 1.0   | 0.54    | 0.08  | 1 - 0.92 s           |
| random_erasing         | 0     | 0.125   | 0.25  | 0.25 s               |

Magnitude stops at 10, the most timm's severity-increasing op set defines. Flips, mixup and
CutMix are left alone: whether a flip preserves the label, and whether soft targets suit the
task, depend on the data rather than on a strength.
"""

from __future__ import annotations

from typing import Protocol


class _Augment(Protocol):
    @property
    def strength(self) -> float | None: ...

    @property
    def model_fields_set(self) -> set[str]: ...


def strength_table(strength: float) -> dict[str, float | int]:
    """The augment field values of a strength in [0, 1] (the module docstring's table)."""
    return {
        "randaugment_layers": round(3 * strength),
        "randaugment_magnitude": 10.0 * strength,
        "crop_scale_min": 1.0 - 0.92 * strength,
        "random_erasing": 0.25 * strength,
    }


def apply_strength(augment: _Augment) -> None:
    """Set an augment section's fields from its strength (no-op while strength is null).

    Fields given explicitly are accepted when they equal the table's value (a resolved recipe
    written back to YAML names them all) and refused otherwise.

    Raises:
        ValueError: an explicit field that contradicts the strength.
    """
    if augment.strength is None:
        return
    for name, value in strength_table(augment.strength).items():
        given = getattr(augment, name)
        if name in augment.model_fields_set and abs(given - value) > 1e-9:
            raise ValueError(
                f"augment.strength {augment.strength:g} sets {name} to {value:g}, but the "
                f"recipe gives {name}: {given:g}; drop one of them"
            )
        # Bypass validate_assignment: assigning would re-run this validator.
        augment.__dict__[name] = value
