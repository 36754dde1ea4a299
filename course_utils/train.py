"""Seeded, deterministic training of the course models; ``python -m course_utils.train mnist1d|hmt``.

The shipped weights (``course_utils/models/weights``) were made with the defaults of this module:
``python -m course_utils.train mnist1d`` and ``python -m course_utils.train hmt`` (the classifiers),
``python -m course_utils.train mnist1d --model gan`` and ``python -m course_utils.train hmt --model gan`` (the
GANs of :mod:`course_utils.variations`, the poster's generators), ``... --model vae`` (the VAEs, the comparison).
"""
from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

import course_utils
from course_utils.device import get_device
from course_utils.core.progress import progress_bar
from course_utils.models import (GAN, VAE, ShallowCNN1D, SignalGAN, SignalVAE, TileGAN, TileVAE, VGG7,
                                 load_pretrained, save_checkpoint)
from course_utils.models.pretrained import GANS, GENERATORS, PRETRAINED, WEIGHTS_DIR


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (AdamW with a one-cycle learning-rate schedule)."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    augment: bool = False
    seed: int = 0


@dataclass
class History:
    """Per-epoch training loss and validation accuracy, and the wall time."""

    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def dihedral_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flip + multiple-of-90° rotation of each image (the 8 symmetries of a square tile)."""
    choice = torch.randint(0, 8, (x.shape[0],), generator=generator)
    out = torch.empty_like(x)
    for k in range(8):
        idx = (choice == k).nonzero().squeeze(1)
        if idx.numel():
            part = x[idx].flip(-1) if k >= 4 else x[idx]
            out[idx] = torch.rot90(part, k % 4, dims=(-2, -1))
    return out


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (restored to its previous mode) on tensors ``x``, ``y``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = sum((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(y), batch_size))
    model.train(was_training)
    return correct / len(y)


def _seeded_split(model: nn.Module, n: int, config: TrainConfig, device):
    """The start every trainer shares: the device, the one private generator seeded with ``config.seed`` and the
    hold-out split it draws first (``val_idx``, ``train_idx``); ``model`` moved there in training mode."""
    if not 0 <= config.val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {config.val_fraction}; 0 trains on every sample.")
    device = get_device(device)
    gen = torch.Generator().manual_seed(config.seed)
    perm = torch.randperm(n, generator=gen)
    n_val = int(round(config.val_fraction * n))
    model.to(device).train()
    return device, gen, perm[:n_val], perm[n_val:]


def _train(model: nn.Module, x: torch.Tensor, config: TrainConfig, batch_loss, validate, device, progress: bool,
           label: str) -> History:
    """The loop both trainers share: a seeded hold-out split, AdamW with a one-cycle schedule, seeded shuffling
    and augmentation. ``batch_loss(xb, idx, gen)`` is the loss of one batch; ``validate(val_idx)`` the number
    kept in ``History.val_accuracy`` after each epoch, under ``label``."""
    device, gen, val_idx, train_idx = _seeded_split(model, len(x), config, device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(train_idx) // config.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    history, start = History(), time.perf_counter()
    epochs = progress_bar(range(config.epochs), enabled=progress, desc=f"training {type(model).__name__}")
    for epoch in epochs:
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        total = 0.0
        for i in range(0, len(order), config.batch_size):
            idx = order[i:i + config.batch_size]
            xb = dihedral_augment(x[idx], gen) if config.augment else x[idx]
            loss = batch_loss(xb.to(device), idx, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.train_loss.append(total / len(order))
        history.val_accuracy.append(validate(val_idx) if len(val_idx) else float("nan"))
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{history.train_loss[-1]:.3f}", **{label: f"{history.val_accuracy[-1]:.3f}"},
                               refresh=False)
        elif progress:
            print(f"epoch {epoch + 1}/{config.epochs}: loss {history.train_loss[-1]:.4f}, "
                  f"{label} {history.val_accuracy[-1]:.4f}", flush=True)
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
        device: str | torch.device | None = None, progress: bool = True) -> History:
    """Train ``model`` in place on ``(x, y)``; a seeded ``val_fraction`` of it is held out for validation.

    Same seed, same device and thread count → the same weights (shuffling and augmentation use a private
    generator; model initialisation is the caller's, see :func:`train_mnist1d`).
    """
    return _train(model, x, config, lambda xb, idx, gen: nn.functional.cross_entropy(model(xb), y[idx].to(xb.device)),
                  lambda val_idx: accuracy(model, x[val_idx], y[val_idx]), device, progress, "val_acc")


MNIST1D_CONFIG = TrainConfig(epochs=60, lr=3e-3, batch_size=100, weight_decay=1e-4)
HMT_CONFIG = TrainConfig(epochs=40, lr=2e-3, batch_size=32, weight_decay=1e-4, augment=True)


MNIST1D_VAE_CONFIG = TrainConfig(epochs=60, lr=3e-3, batch_size=100, weight_decay=0.0)
HMT_VAE_CONFIG = TrainConfig(epochs=8, lr=2e-3, batch_size=64, weight_decay=0.0)


def fit_vae(model: VAE, x: torch.Tensor, config: TrainConfig, device: str | torch.device | None = None,
            progress: bool = True) -> History:
    """Train a VAE in place on ``x`` (negative ELBO, AdamW + one-cycle); ``History.val_accuracy`` holds the
    held-out mean squared reconstruction error (raw units) per epoch instead of an accuracy."""
    return _train(model, x, config, lambda xb, idx, gen: model.loss(xb, gen),
                  lambda val_idx: reconstruction_error(model, x[val_idx]), device, progress, "val_mse")


@torch.no_grad()
def reconstruction_error(model: VAE, x: torch.Tensor, batch_size: int = 256) -> float:
    """Mean squared error of ``G(μ(x))`` against ``x`` in raw input units."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = sum((model(x[i:i + batch_size].to(device)).cpu() - x[i:i + batch_size]).square().sum().item()
                for i in range(0, len(x), batch_size))
    model.train(was_training)
    return total / x.numel()


@torch.no_grad()
def generator_quality(model: VAE, classifier: nn.Module, test_set, n_samples: int = 1000, seed: int = 0) -> dict:
    """Test reconstruction MSE; the classifier's accuracy on the reconstructions ``G(μ(x))`` against the labels
    (and on the originals); and, for ``n_samples`` prior samples ``G(z)``, the share the classifier assigns to
    some class with softmax ≥ 0.9 and the mean top softmax."""
    model, classifier = model.cpu().eval(), classifier.cpu().eval()
    z = torch.randn(n_samples, model.latent, generator=torch.Generator().manual_seed(seed))
    top = classifier(model.decode(z)).softmax(1).amax(1)
    return {"test_reconstruction_mse": reconstruction_error(model, test_set.x),
            "reconstruction_accuracy": accuracy(nn.Sequential(model, classifier), test_set.x, test_set.y),
            "original_accuracy": accuracy(classifier, test_set.x, test_set.y),
            "samples_confident": (top >= 0.9).float().mean().item(), "samples_mean_top_softmax": top.mean().item()}


def train_generator(dataset: str, config: TrainConfig | None = None, root: str | Path | None = None,
                    image_size: int = 64, out: str | Path | None = None, device=None,
                    progress: bool = True) -> tuple[VAE, dict]:
    """Train the VAE of ``dataset`` ("mnist1d": SignalVAE, "hmt": TileVAE at ``image_size`` px) on its training
    split; returns ``(model, metadata)`` with :func:`generator_quality` and saves a checkpoint if ``out``."""
    from course_utils.data import hmt, mnist1d

    if dataset == "mnist1d":
        config = config or MNIST1D_VAE_CONFIG
        train_set, test_set = mnist1d("train", root=root), mnist1d("test", root=root)
        torch.manual_seed(config.seed)
        model = SignalVAE(mean=train_set.x.mean().item(), std=train_set.x.std().item(), noise_std=0.3)
        image_size = None
    elif dataset == "hmt":
        config = config or HMT_VAE_CONFIG
        train_set, test_set = hmt(root, "train", image_size), hmt(root, "test", image_size)
        torch.manual_seed(config.seed)
        model = TileVAE(mean=train_set.x.mean((0, 2, 3)).tolist(), std=train_set.x.std((0, 2, 3)).tolist())
    else:
        raise ValueError(f"train_generator({dataset!r}): choose one of {sorted(GENERATORS)}.")
    history = fit_vae(model, train_set.x, config, device, progress)
    quality = generator_quality(model, load_pretrained(dataset, device="cpu"), test_set, seed=config.seed)
    meta = {"dataset": dataset, "image_size": image_size, "seed": config.seed, "config": vars(config),
            **quality, "val_reconstruction_mse": history.val_accuracy, "train_loss": history.train_loss,
            "train_seconds": history.seconds, "versions": _versions()}
    if out is not None:
        save_checkpoint(model, out, **meta)
    return model.cpu().eval(), meta


MNIST1D_GAN_CONFIG = TrainConfig(epochs=100, lr=2e-4, batch_size=64, weight_decay=0.0)
HMT_GAN_CONFIG = TrainConfig(epochs=4, lr=2e-4, batch_size=64, weight_decay=0.0, augment=True)
DISCRIMINATOR_EPOCHS = {"mnist1d": 10, "hmt": 1}   # D alone against the final G, see fit_gan


def fit_gan(model: GAN, x: torch.Tensor, config: TrainConfig, device: str | torch.device | None = None,
            progress: bool = True, discriminator_epochs: int = 0) -> History:
    """Train a GAN in place on ``x``: per batch one discriminator step, then one generator step (Goodfellow et
    al. 2014, Algorithm 1 with k = 1), each with Adam (lr ``config.lr``, β = (0.5, 0.999) as in DCGAN,
    Radford et al. 2016; constant rate, no weight decay). ``History.train_loss`` holds the generator's loss per
    epoch and ``History.val_accuracy`` the mean ``σ(D(x))`` on the held-out real inputs. Seeded like :func:`fit`:
    the split, the shuffling, the augmentation and the codes ``z`` come from one private generator.

    Then ``discriminator_epochs`` more epochs train ``D`` alone against the final ``G`` (same optimiser, ``G``
    frozen): at the end of the adversarial game ``σ(D)`` hovers near ½ on every input and tells little about
    realism; ``D`` trained to convergence for a fixed ``G`` approaches ``p_data / (p_data + p_G)`` (Goodfellow et
    al., Proposition 1), the judgement the latent search's realism term needs. These epochs are added to
    ``History`` (generator loss ``nan``)."""
    device, gen, val_idx, train_idx = _seeded_split(model, len(x), config, device)
    d_opt = torch.optim.Adam(model.discriminator.parameters(), lr=config.lr, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(model.generator.parameters(), lr=config.lr, betas=(0.5, 0.999))
    history, start = History(), time.perf_counter()
    total_epochs = config.epochs + discriminator_epochs
    for epoch in progress_bar(range(total_epochs), enabled=progress, desc=f"training {type(model).__name__}"):
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        total, adversarial = 0.0, epoch < config.epochs
        for i in range(0, len(order), config.batch_size):
            idx = order[i:i + config.batch_size]
            xb = (dihedral_augment(x[idx], gen) if config.augment else x[idx]).to(device)
            z = torch.randn(len(idx), model.latent, generator=gen).to(device)
            fake = model.generator(z) if adversarial else model.generator(z).detach()
            d_opt.zero_grad(set_to_none=True)
            model.discriminator_loss(xb, fake).backward()
            d_opt.step()
            if adversarial:
                g_loss = model.generator_loss(fake)                         # D after its step
                g_opt.zero_grad(set_to_none=True)
                g_loss.backward()
                g_opt.step()
                total += g_loss.item() * len(idx)
        d_opt.zero_grad(set_to_none=True)
        g_opt.zero_grad(set_to_none=True)
        history.train_loss.append(total / len(order) if adversarial else float("nan"))
        history.val_accuracy.append(realism(model, x[val_idx]).mean().item() if len(val_idx) else float("nan"))
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


@torch.no_grad()
def realism(model: GAN, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The discriminator's probability ``σ(D(x))`` that each raw input is real, ``(N,)`` on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model.realism_logit(x[i:i + batch_size].to(device)).sigmoid().cpu()
                     for i in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0)
    model.train(was_training)
    return out


@torch.no_grad()
def gan_quality(model: GAN, classifier: nn.Module, test_set, n_samples: int = 1000, seed: int = 0) -> dict:
    """The discriminator's mean ``σ(D)`` on the real test inputs and on ``n_samples`` generated ``G(z)``; the
    share of generated inputs the classifier assigns to some class with softmax ≥ 0.9, and their mean top
    softmax (the classifier's accuracy on the originals for reference)."""
    model, classifier = model.cpu().eval(), classifier.cpu().eval()
    z = torch.randn(n_samples, model.latent, generator=torch.Generator().manual_seed(seed))
    samples = torch.cat([model.decode(part) for part in z.split(250)])
    top = torch.cat([classifier(part).softmax(1).amax(1) for part in samples.split(250)])
    return {"test_realism": realism(model, test_set.x).mean().item(),
            "samples_realism": realism(model, samples).mean().item(),
            "original_accuracy": accuracy(classifier, test_set.x, test_set.y),
            "samples_confident": (top >= 0.9).float().mean().item(), "samples_mean_top_softmax": top.mean().item()}


def train_gan(dataset: str, config: TrainConfig | None = None, root: str | Path | None = None,
              image_size: int = 64, out: str | Path | None = None, device=None, progress: bool = True,
              discriminator_epochs: int | None = None) -> tuple[GAN, dict]:
    """Train the GAN of ``dataset`` ("mnist1d": SignalGAN, "hmt": TileGAN at ``image_size`` px) on its training
    split (:func:`fit_gan`; ``discriminator_epochs`` defaults to :data:`DISCRIMINATOR_EPOCHS`); returns
    ``(model, metadata)`` with :func:`gan_quality` and saves a checkpoint if ``out``."""
    from course_utils.data import hmt, mnist1d

    if dataset == "mnist1d":
        config = config or MNIST1D_GAN_CONFIG
        train_set, test_set = mnist1d("train", root=root or "data"), mnist1d("test", root=root or "data")
        torch.manual_seed(config.seed)
        model = SignalGAN(mean=train_set.x.mean().item(), std=train_set.x.std().item())
        image_size = None
    elif dataset == "hmt":
        config = config or HMT_GAN_CONFIG
        train_set, test_set = hmt(root, "train", image_size), hmt(root, "test", image_size)
        torch.manual_seed(config.seed)
        model = TileGAN(mean=train_set.x.mean((0, 2, 3)).tolist(), std=train_set.x.std((0, 2, 3)).tolist())
    else:
        raise ValueError(f"train_gan({dataset!r}): choose one of {sorted(GANS)}.")
    if discriminator_epochs is None:
        discriminator_epochs = DISCRIMINATOR_EPOCHS[dataset]
    history = fit_gan(model, train_set.x, config, device, progress, discriminator_epochs)
    quality = gan_quality(model, load_pretrained(dataset, device="cpu"), test_set, seed=config.seed)
    meta = {"dataset": dataset, "image_size": image_size, "seed": config.seed, "config": vars(config),
            "discriminator_epochs": discriminator_epochs, **quality, "val_realism": history.val_accuracy,
            "train_loss": history.train_loss,
            "train_seconds": history.seconds, "device": str(get_device(device)), "versions": _versions()}
    if out is not None:
        save_checkpoint(model, out, **meta)
    return model.cpu().eval(), meta


def _versions() -> dict:
    return {"course_utils": course_utils.__version__, "torch": str(torch.__version__), "numpy": str(np.__version__),
            "python": platform.python_version()}


def train_mnist1d(config: TrainConfig = MNIST1D_CONFIG, root: str | Path | None = None, out: str | Path | None = None,
                  device=None, progress: bool = True) -> tuple[ShallowCNN1D, dict]:
    """Train ShallowCNN1D on MNIST-1D; returns ``(model, metadata)`` and saves a checkpoint if ``out``."""
    from course_utils.data import mnist1d

    train_set, test_set = mnist1d("train", root=root), mnist1d("test", root=root)
    torch.manual_seed(config.seed)
    model = ShallowCNN1D(mean=train_set.x.mean().item(), std=train_set.x.std().item())
    history = fit(model, train_set.x, train_set.y, config, device, progress)
    return _finish(model, "mnist1d", None, config, history, test_set, out)


def train_hmt(config: TrainConfig = HMT_CONFIG, root: str | Path | None = None, image_size: int = 64,
              out: str | Path | None = None, device=None, progress: bool = True) -> tuple[VGG7, dict]:
    """Train VGG7 on the HMT course split at ``image_size`` px; returns ``(model, metadata)``."""
    from course_utils.data import hmt

    train_set, test_set = hmt(root, "train", image_size), hmt(root, "test", image_size)
    torch.manual_seed(config.seed)
    model = VGG7(mean=train_set.x.mean((0, 2, 3)).tolist(), std=train_set.x.std((0, 2, 3)).tolist())
    history = fit(model, train_set.x, train_set.y, config, device, progress)
    return _finish(model, "hmt", image_size, config, history, test_set, out)


def _finish(model, dataset, image_size, config, history, test_set, out):
    meta = {"dataset": dataset, "image_size": image_size, "seed": config.seed, "config": vars(config),
            "test_accuracy": accuracy(model, test_set.x, test_set.y), "n_test": len(test_set),
            "val_accuracy": history.val_accuracy, "train_loss": history.train_loss,
            "train_seconds": history.seconds, "versions": _versions()}
    if out is not None:
        save_checkpoint(model, out, **meta)
    return model.cpu().eval(), meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_utils.train", description=__doc__)
    parser.add_argument("dataset", choices=sorted(PRETRAINED))
    parser.add_argument("--model", choices=["classifier", "gan", "vae"], default="classifier",
                        help="the classifier (default), or a generator of course_utils.variations: the GAN (the "
                             "poster's) or the VAE (the comparison)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--discriminator-epochs", type=int, default=None,
                        help="GAN only: epochs of the discriminator alone after the adversarial ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="training samples held out for the per-epoch validation accuracy (0 = none)")
    parser.add_argument("--image-size", type=int, default=64, help="HMT only (default 64 px)")
    parser.add_argument("--data", default=None, help="data folder (default: the data home) or HMT source")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="checkpoint path (default: the shipped weights file)")
    args = parser.parse_args(argv)
    vae = args.model == "vae"
    base = {("classifier", "mnist1d"): MNIST1D_CONFIG, ("classifier", "hmt"): HMT_CONFIG,
            ("vae", "mnist1d"): MNIST1D_VAE_CONFIG, ("vae", "hmt"): HMT_VAE_CONFIG,
            ("gan", "mnist1d"): MNIST1D_GAN_CONFIG, ("gan", "hmt"): HMT_GAN_CONFIG}[args.model, args.dataset]
    overrides = {"epochs": args.epochs, "val_fraction": args.val_fraction, "batch_size": args.batch_size,
                 "lr": args.lr}
    config = TrainConfig(**{**vars(base), "seed": args.seed,
                            **{k: v for k, v in overrides.items() if v is not None}})
    shipped = {"classifier": PRETRAINED, "vae": GENERATORS, "gan": GANS}[args.model]
    out = Path(args.out) if args.out else WEIGHTS_DIR / shipped[args.dataset]
    if args.model == "gan":
        _, meta = train_gan(args.dataset, config, root=args.data, image_size=args.image_size, out=out,
                            device=args.device, discriminator_epochs=args.discriminator_epochs)
        print(f"{args.dataset} GAN: discriminator's mean P(real) on test inputs {meta['test_realism']:.3f}, on "
              f"generated {meta['samples_realism']:.3f}; generated with classifier top softmax ≥ 0.9: "
              f"{100 * meta['samples_confident']:.1f}%, {meta['train_seconds']:.0f} s; saved {out}")
        return
    if vae:
        _, meta = train_generator(args.dataset, config, root=args.data, image_size=args.image_size, out=out,
                                  device=args.device)
        print(f"{args.dataset} VAE: test reconstruction MSE {meta['test_reconstruction_mse']:.4f}, classifier "
              f"accuracy on reconstructions {100 * meta['reconstruction_accuracy']:.1f}% (originals "
              f"{100 * meta['original_accuracy']:.1f}%), prior samples with top softmax ≥ 0.9: "
              f"{100 * meta['samples_confident']:.1f}%, {meta['train_seconds']:.0f} s; saved {out}")
        return
    if args.dataset == "mnist1d":
        _, meta = train_mnist1d(config, root=args.data, out=out, device=args.device)
    else:
        _, meta = train_hmt(config, root=args.data, image_size=args.image_size, out=out, device=args.device)
    print(f"{args.dataset}: test accuracy {100 * meta['test_accuracy']:.2f}% on {meta['n_test']} samples, "
          f"{meta['train_seconds']:.0f} s; saved {out}")


if __name__ == "__main__":
    main()
