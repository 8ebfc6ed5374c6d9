"""The error raised for training inputs that cannot work."""

from __future__ import annotations

from rsearch.errors import UserError


class TrainInputError(UserError):
    """Data, weights or recipe values that cannot be trained with, saying what to change.

    Examples: a missing dataset path, an unreadable image, class folders that differ between
    train/ and val/, a model name timm lacks, fp16 asked for on a CPU.
    """
