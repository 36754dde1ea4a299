"""Checkpoints with metadata, and the weights shipped inside the package."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.core.files import write_atomic
from course_utils.device import get_device
from course_utils.models.architectures import ShallowCNN1D, VGG7
from course_utils.models.generative import SignalGAN, SignalVAE, TileGAN, TileVAE

WEIGHTS_DIR = Path(__file__).with_name("weights")
ARCHITECTURES = {"ShallowCNN1D": ShallowCNN1D, "VGG7": VGG7, "SignalVAE": SignalVAE, "TileVAE": TileVAE,
                 "SignalGAN": SignalGAN, "TileGAN": TileGAN}
PRETRAINED = {"mnist1d": "mnist1d_shallowcnn1d.pt", "hmt": "hmt_vgg7.pt"}
GENERATORS = {"mnist1d": "mnist1d_signalvae.pt", "hmt": "hmt_tilevae.pt"}
GANS = {"mnist1d": "mnist1d_signalgan.pt", "hmt": "hmt_tilegan.pt"}


def _is_checkpoint(path: Path) -> bool:
    """Whether ``path`` holds a checkpoint written by :func:`save_checkpoint` (which a new one may replace)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 -- anything unreadable is not one of ours
        return False
    return isinstance(ckpt, dict) and {"architecture", "state_dict", "metadata"} <= set(ckpt)


def save_checkpoint(model: nn.Module, path: str | Path, **metadata: Any) -> Path:
    """Save ``model``'s weights with its architecture name, constructor arguments and ``metadata``.

    Written atomically; an existing file is replaced only if it is such a checkpoint, anything else raises
    :class:`~course_utils.core.files.NotOurFileError`.
    """
    path = Path(path)
    arch = type(model).__name__
    if arch not in ARCHITECTURES:
        raise ValueError(f"cannot checkpoint a {arch}; expected one of {sorted(ARCHITECTURES)}.")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    checkpoint = {"architecture": arch, "config": getattr(model, "config", {}), "state_dict": state,
                  "metadata": metadata}
    return write_atomic(path, lambda handle: torch.save(checkpoint, handle), ours=_is_checkpoint, what="checkpoint")


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns ``(model in eval mode, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train one with `python -m course_utils.train`.")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = ARCHITECTURES[ckpt["architecture"]](**ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(get_device(device)).eval(), ckpt["metadata"]


def load_pretrained(name: str, device: str | torch.device | None = None, with_metadata: bool = False):
    """The shipped model for ``"mnist1d"`` (ShallowCNN1D) or ``"hmt"`` (VGG7), in eval mode.

    ``with_metadata=True`` also returns the checkpoint's metadata (dataset, image size, test accuracy, seed,
    library versions).
    """
    if name not in PRETRAINED:
        raise ValueError(f"load_pretrained({name!r}): choose one of {sorted(PRETRAINED)}.")
    model, meta = load_checkpoint(WEIGHTS_DIR / PRETRAINED[name], device)
    return (model, meta) if with_metadata else model


def load_generator(name: str, device: str | torch.device | None = None, with_metadata: bool = False,
                   kind: str = "vae"):
    """A shipped generator of :mod:`course_utils.variations` in eval mode: ``kind="gan"`` the GAN (the poster's
    generator and discriminator; SignalGAN for ``"mnist1d"``, TileGAN for ``"hmt"``, 64 px) or ``kind="vae"``
    the VAE (SignalVAE / TileVAE, the comparison). Either's ``decode(z)`` is the generator ``G``."""
    files = {"vae": GENERATORS, "gan": GANS}
    if kind not in files:
        raise ValueError(f"load_generator(kind={kind!r}): choose 'gan' or 'vae'.")
    if name not in files[kind]:
        raise ValueError(f"load_generator({name!r}): choose one of {sorted(files[kind])}.")
    model, meta = load_checkpoint(WEIGHTS_DIR / files[kind][name], device)
    return (model, meta) if with_metadata else model
