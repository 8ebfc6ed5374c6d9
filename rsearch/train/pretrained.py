"""Starting a model from a local pretrained file (`model.pretrained`); nothing is downloaded.

The file is read with timm's own reader (timm.models.load_state_dict, weights_only, so opening
it never runs code): a bare state dict, one under `state_dict`/`model`, or timm train.py's
checkpoint (its EMA weights, `state_dict_ema`, when present, as timm's load_checkpoint does).
An rsearch checkpoint is one under `model`; a checkpoint directory names its checkpoint.pt.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from timm.models import load_state_dict
from torch import nn

from rsearch.train.checkpoint import checkpoint_file
from rsearch.train.errors import TrainInputError

log = logging.getLogger(__name__)

SHOWN = 4
"""Keys named per kind of mismatch in an error."""


def load_pretrained(model: nn.Module, path: str | Path, model_name: str) -> None:
    """Initialise model from a pretrained file, re-making a classifier for another class count.

    A classifier absent from the file (a feature extractor's weights) or shaped for another
    number of classes keeps its fresh initialisation, said in an info line naming the layer.

    Raises:
        TrainInputError: the file is missing or unreadable, or its weights do not fit the model
            (naming the file, the model and a few missing, unexpected and mis-shaped keys).
    """
    file = weights_file(path)
    state = read_state(file)
    own = model.state_dict()
    head = classifier_keys(model)
    remade = sorted(k for k in head if k not in state or state[k].shape != own[k].shape)
    absent = any(k not in state for k in remade)
    for key in remade:
        state.pop(key, None)
    problem = mismatch(own, state, set(remade))
    if problem:
        raise TrainInputError(
            f"model.pretrained {str(file)!r} does not fit model {model_name!r}: {problem}"
        )
    model.load_state_dict(state, strict=False)
    if remade:
        layer = remade[0].rsplit(".", 1)[0]
        outputs = own[remade[0]].shape[0]
        log.info(
            "model.pretrained %s: classifier %r re-made for %d classes (the file's %s)",
            file,
            layer,
            outputs,
            "is absent" if absent else "has another class count",
        )


def weights_file(path: str | Path) -> Path:
    """The file a pretrained path names: itself, or a checkpoint directory's checkpoint.pt.

    Raises:
        TrainInputError: there is no such file.
    """
    file = Path(path).expanduser()
    if file.is_dir():
        file = checkpoint_file(file)
    if not file.is_file():
        raise TrainInputError(f"model.pretrained {str(file)!r} does not exist")
    return file


def read_state(file: Path) -> dict[str, torch.Tensor]:
    """The model weights in a timm or rsearch file, wrapper prefixes (DDP, compile) removed.

    Raises:
        TrainInputError: the file cannot be read as torch weights or holds no state dict.
    """
    try:
        state = load_state_dict(str(file), use_ema=True, device="cpu", weights_only=True)
    except Exception as e:  # torch and safetensors raise many types for a bad file
        raise TrainInputError(f"cannot read model.pretrained {str(file)!r}: {e}") from e
    if not state or not all(torch.is_tensor(v) for v in state.values()):
        raise TrainInputError(
            f"model.pretrained {str(file)!r} holds no state dict (nor one under state_dict, "
            "state_dict_ema or model, nor an rsearch checkpoint)"
        )
    return dict(state)


def classifier_keys(model: nn.Module) -> list[str]:
    """State-dict keys of the model's classifier (timm's pretrained_cfg names it)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier")
    prefixes = (names,) if isinstance(names, str) else tuple(names or ())
    return [k for k in model.state_dict() if k.startswith(tuple(f"{p}." for p in prefixes))]


def mismatch(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], remade: set[str]) -> str:
    """What keeps state from loading into a model with state dict own ('' when it fits)."""
    # A frozen batch norm (timm's FrozenBatchNorm2d) keeps no step counter: not a weight.
    missing = sorted(k for k in own if k not in state and k not in remade and not _counter(k))
    unexpected = sorted(k for k in state if k not in own and not _counter(k))
    shapes = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_show(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_show(unexpected)})")
    if shapes:
        shown = [f"{k} file {tuple(state[k].shape)} model {tuple(own[k].shape)}" for k in shapes]
        parts.append(f"{len(shapes)} mis-shaped ({_show(shown)})")
    return "; ".join(parts)


def _counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _show(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (", ..." if len(items) > SHOWN else "")
