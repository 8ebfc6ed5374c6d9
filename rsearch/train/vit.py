"""Vision transformers and MLP-Mixers at the data's resolution.

timm builds ViTs (vision_transformer family: vit_*, deit_*) and MLP-Mixers (mlp_mixer family:
mixer_*, resmlp_*, gmlp_*) for 224 px inputs with 16 px patches; at 32 px their patch
embedding refuses the input. Here they are built for the run's largest resolution with
model.patch_size (or their own patch), and a ViT whose run sees several resolutions
(data.progressive, an eval size of its own) takes each through timm's dynamic_img_size, which
resamples the position embedding. A Mixer's token-mixing layers are sized by the token count,
so it trains and evaluates at one resolution only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import torch
from timm.layers import PatchEmbed
from timm.models import mlp_mixer
from timm.models.mlp_mixer import MlpMixer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from rsearch.spec.recipe import Recipe
from rsearch.spec.resolutions import eval_sizes, train_sizes
from rsearch.train.errors import TrainInputError
from rsearch.train.factory import create

Family = Literal["vit", "mixer"]


@lru_cache(maxsize=64)  # a name's class never changes within a process; a build costs seconds
def patch_family(name: str) -> tuple[Family, int] | None:
    """(family, its own patch size) of a timm ViT or Mixer model; None for other models.

    The family is told by the class of the model timm builds (on the meta device: no weights
    are allocated), not by its name.
    """
    with torch.device("meta"):
        model = create(name, num_classes=2)
    if isinstance(model, VisionTransformer) and type(model.patch_embed) is PatchEmbed:
        return "vit", _patch(model.patch_embed)
    if isinstance(model, MlpMixer) and isinstance(model.stem, PatchEmbed):
        return "mixer", _patch(model.stem)
    return None


def _patch(embed: PatchEmbed) -> int:
    size = embed.patch_size
    return int(size[0] if isinstance(size, tuple) else size)


def run_sizes(recipe: Recipe) -> list[int]:
    """Every resolution the run trains or evaluates at, smallest first."""
    return sorted({*train_sizes(recipe.data), *eval_sizes(recipe.data)})


def dividing_patches(size: int, limit: int = 32) -> list[int]:
    """Patch sizes up to limit that divide size (what to suggest when a patch does not)."""
    return [p for p in range(2, min(size, limit) + 1) if size % p == 0]


def patch_model(recipe: Recipe, family: Family, own_patch: int, **kwargs: Any) -> nn.Module:
    """A ViT or Mixer built for the run's resolutions.

    Args:
        recipe: the run's recipe (model.name, model.patch_size; the data sizes).
        family: which family model.name belongs to (patch_family).
        own_patch: the model's own patch size, used when model.patch_size is unset.
        kwargs: further create_model arguments (num_classes, drop rates).

    Raises:
        TrainInputError: the patch does not divide a size; a Mixer asked to see several sizes.
    """
    name, sizes = recipe.model.name, run_sizes(recipe)
    patch = recipe.model.patch_size or own_patch
    for size in sizes:
        if size % patch:
            raise TrainInputError(
                f"{name!r} cuts {size} px images into {patch} px patches, which does not "
                f"divide {size}; set model.patch_size to one of {dividing_patches(size)}"
            )
    if family == "mixer" and len(sizes) > 1:
        raise TrainInputError(
            f"{name!r} (an MLP-Mixer) takes one resolution, sized at build time, but this run "
            f"trains or evaluates at {sizes}; drop data.progressive sizes and eval_image_size"
        )
    kwargs.update(img_size=sizes[-1], patch_size=patch)
    if family == "vit":
        return create(name, dynamic_img_size=len(sizes) > 1, **kwargs)
    return _mixer(name, **kwargs)


class _Arguments(Exception):
    """Carries the constructor arguments out of a timm Mixer builder."""

    def __init__(self, kwargs: dict[str, Any]):
        super().__init__("captured")
        self.kwargs = kwargs


def _mixer(name: str, **kwargs: Any) -> nn.Module:
    # timm's Mixer builders fix patch_size in their own arguments (passing it again is a
    # TypeError), so the builder is run with timm's private _create_mixer swapped for a
    # catcher of its arguments, and the model is then created from them with the patch replaced.
    import timm

    patch = kwargs.pop("patch_size")
    real = mlp_mixer._create_mixer

    def catch(variant: str, pretrained: bool = False, **args: Any) -> nn.Module:
        raise _Arguments(args)

    mlp_mixer._create_mixer = catch  # type: ignore[assignment]
    try:
        timm.models.model_entrypoint(name)(pretrained=False, **kwargs)
    except _Arguments as e:
        args = {**e.kwargs, "patch_size": patch}
    finally:
        mlp_mixer._create_mixer = real
    model: nn.Module = real(name, pretrained=False, **args)
    return model
