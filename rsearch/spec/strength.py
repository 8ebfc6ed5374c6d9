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

from pydantic import BaseModel


def strength_table(strength: float) -> dict[str, float | int]:
    """The augment field values of a strength in [0, 1] (the module docstring's table)."""
    return {
        "randaugment_layers": round(3 * strength),
        "randaugment_magnitude": 10.0 * strength,
        "crop_scale_min": 1.0 - 0.92 * strength,
        "random_erasing": 0.25 * strength,
    }


def apply_strength(augment: BaseModel) -> None:
    """Set an augment section's fields from its strength (no-op while strength is null).

    A search builds each trial from the base recipe written out in full, so a field that is
    present is not necessarily chosen: fields at their defaults, and fields that together are
    another strength's table row (a base recipe that sets a strength itself), are taken as
    derived and replaced. Any other value of these fields contradicts the strength.

    Raises:
        ValueError: a field set away from both its default and the strength's table value.
    """
    strength = getattr(augment, "strength", None)
    if strength is None:
        return
    table = strength_table(strength)
    current = {name: getattr(augment, name) for name in table}
    if not _is_a_row(current):
        defaults = type(augment).model_fields
        for name, value in current.items():
            if not (_same(value, table[name]) or _same(value, defaults[name].default)):
                raise ValueError(
                    f"augment.strength {strength:g} sets {name} to {table[name]:g}, but the "
                    f"recipe gives {name}: {value:g}; drop one of them"
                )
    for name, value in table.items():
        # Bypass validate_assignment: assigning would re-run this validator.
        augment.__dict__[name] = value


def _is_a_row(values: dict[str, float | int]) -> bool:
    # The magnitude is 10 s, so it names the only strength whose row these could be.
    row = strength_table(values["randaugment_magnitude"] / 10.0)
    return 0.0 <= values["randaugment_magnitude"] <= 10.0 and all(
        _same(values[name], row[name]) for name in row
    )


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9
