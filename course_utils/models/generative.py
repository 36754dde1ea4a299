"""The generators ``G(z)`` of Thakur & Fischmeister's acceptable variations (2020, problem 2;
:mod:`course_utils.variations`) for MNIST-1D signals and 64-px HMT tiles.

*GANs* (Goodfellow et al. 2014, "Generative Adversarial Nets", Eq. 1), the poster's generator: a generator
``G(z)``, ``z ~ N(0, I)``, and a discriminator ``D(x)`` whose output ``σ(D(x))`` is the probability that ``x``
is a real input; the latent search uses ``D`` as its realism term. The networks are DCGAN-like (Radford et al.
2016: strided convolutions in ``D``, LeakyReLU 0.2, upsampling in ``G``) but without batch normalisation, so
``G(z)`` of one code does not depend on the rest of the batch (the latent search optimises many codes at once).
``D`` takes raw inputs and normalises them itself, like the classifiers.

*VAEs* (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", Eq. 10), kept as the comparison: they have no
discriminator, so their latent search uses the prior's ``½‖z‖²`` instead of a realism term (a MAP estimate of
``z``, not the poster's method; :mod:`course_utils.variations`).

Every generator here normalises with the training set's statistics (buffers saved with the weights) and
decodes back to raw input space, so ``G(z)`` is directly comparable with the classifier's inputs.

VAE details. The prior is
``z ~ N(0, I)``; :meth:`VAE.loss` is the negative ELBO with a Gaussian likelihood of standard deviation
``noise_std`` in normalised units (the summed squared error over ``2 noise_std²``) and the closed-form KL
divergence (Kingma & Welling, Appendix B). A smaller ``noise_std`` trades prior fit for sharper reconstructions.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from course_utils.models.architectures import Normalize


class VAE(nn.Module):
    """Encoder → ``(μ, log σ²)``; decoder ``G(z)`` → raw input; subclasses build the two networks."""

    latent: int
    noise_std: float

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(μ, log σ²)``, each ``(N, latent)``."""
        mu, logvar = self.encoder(self.normalize(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``G(z)`` in raw input space."""
        out = self.decoder(z)
        shape = (1, -1) + (1,) * (out.dim() - 2)
        return out * self.normalize.std.view(shape) + self.normalize.mean.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``G(μ(x))`` (no sampling)."""
        return self.decode(self.encode(x)[0])

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over the batch of the negative ELBO (reparameterised sample ``z = μ + σ ε``)."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        recon = self.decoder(mu + (0.5 * logvar).exp() * eps)
        squared = (recon - self.normalize(x)).square().flatten(1).sum(1)
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)
        return (0.5 * squared / self.noise_std ** 2 + kl).mean()


class SignalVAE(VAE):
    """VAE for MNIST-1D signals ``(N, 1, 40)``: two strided Conv1d down to 10 steps, a linear latent layer,
    and the mirror image with transposed convolutions."""

    def __init__(self, latent: int = 16, channels: int = 32, mean: float = 0.0, std: float = 1.0,
                 noise_std: float = 1.0):
        super().__init__()
        self.config = {"latent": latent, "channels": channels, "mean": mean, "std": std, "noise_std": noise_std}
        self.latent, self.noise_std = latent, noise_std
        c = channels
        self.normalize = Normalize([mean], [std])
        self.encoder = nn.Sequential(
            nn.Conv1d(1, c, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(c, 2 * c, 5, stride=2, padding=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * c * 10, 2 * latent))
        self.decoder = nn.Sequential(
            nn.Linear(latent, 2 * c * 10), nn.ReLU(), nn.Unflatten(1, (2 * c, 10)),
            nn.ConvTranspose1d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose1d(c, 1, 4, stride=2, padding=1))


class TileVAE(VAE):
    """VAE for 64-px HMT tiles ``(N, 3, 64, 64)``: four stride-2 3×3 convolutions down to 4×4, a linear latent
    layer, and four (nearest ×2 upsampling + 3×3 convolution) stages back up."""

    def __init__(self, latent: int = 32, channels: Sequence[int] = (32, 32, 64, 64),
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.25, 0.25, 0.25),
                 noise_std: float = 1.0):
        super().__init__()
        self.config = {"latent": latent, "channels": list(channels), "mean": list(mean), "std": list(std),
                       "noise_std": noise_std}
        self.latent, self.noise_std = latent, noise_std
        self.normalize = Normalize(mean, std)
        down, widths = [], [3, *channels]
        for a, b in zip(widths[:-1], widths[1:]):
            down += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(widths[-1] * 16, 2 * latent))
        up, back = [], widths[::-1]
        for a, b in zip(back[:-1], back[1:]):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
        self.decoder = nn.Sequential(nn.Linear(latent, widths[-1] * 16), nn.ReLU(),
                                     nn.Unflatten(1, (widths[-1], 4, 4)), *up[:-1])


class GAN(nn.Module):
    """Generator ``G(z)`` (``generator``, normalised units; :meth:`decode` maps to raw input space) and
    discriminator ``D`` (``discriminator``, on normalised inputs; :meth:`realism_logit` takes raw inputs);
    subclasses build the two networks."""

    latent: int

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``G(z)`` in raw input space."""
        out = self.generator(z)
        shape = (1, -1) + (1,) * (out.dim() - 2)
        return out * self.normalize.std.view(shape) + self.normalize.mean.view(shape)

    def realism_logit(self, x: torch.Tensor) -> torch.Tensor:
        """``D``'s logit ``(N,)`` on raw inputs; ``sigmoid`` of it is the probability that ``x`` is real."""
        return self.discriminator(self.normalize(x)).squeeze(1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)

    def discriminator_loss(self, x: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of ``D`` on real raw ``x`` (label 1) and generated ``fake`` (normalised units,
        label 0; detached); Goodfellow et al. Eq. 1."""
        bce = nn.functional.binary_cross_entropy_with_logits
        real_logit, fake_logit = self.discriminator(self.normalize(x)), self.discriminator(fake.detach())
        return bce(real_logit, torch.ones_like(real_logit)) + bce(fake_logit, torch.zeros_like(fake_logit))

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """The non-saturating generator loss ``−log σ(D(G(z)))`` (Goodfellow et al. Sec. 3) of ``fake = G(z)``."""
        logit = self.discriminator(fake)
        return nn.functional.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))


class SignalGAN(GAN):
    """GAN for MNIST-1D signals ``(N, 1, 40)``: ``G`` a linear layer to 10 steps and two stride-2 transposed
    Conv1d; ``D`` two stride-2 Conv1d and a linear logit."""

    def __init__(self, latent: int = 16, channels: int = 32, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.config = {"latent": latent, "channels": channels, "mean": mean, "std": std}
        self.latent, c = latent, channels
        self.normalize = Normalize([mean], [std])
        self.generator = nn.Sequential(
            nn.Linear(latent, 2 * c * 10), nn.ReLU(), nn.Unflatten(1, (2 * c, 10)),
            nn.ConvTranspose1d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose1d(c, 1, 4, stride=2, padding=1))
        self.discriminator = nn.Sequential(
            nn.Conv1d(1, c, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.Conv1d(c, 2 * c, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * c * 10, 1))


class TileGAN(GAN):
    """GAN for 64-px HMT tiles ``(N, 3, 64, 64)``: ``G`` a linear layer to 4×4 and four (nearest ×2 upsampling
    + 3×3 convolution) stages; ``D`` four stride-2 3×3 convolutions down to 4×4 and a linear logit."""

    def __init__(self, latent: int = 32, channels: Sequence[int] = (16, 32, 32, 64),
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.25, 0.25, 0.25)):
        super().__init__()
        self.config = {"latent": latent, "channels": list(channels), "mean": list(mean), "std": list(std)}
        self.latent = latent
        self.normalize = Normalize(mean, std)
        widths = [3, *channels]
        down = []
        for a, b in zip(widths[:-1], widths[1:]):
            down += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.discriminator = nn.Sequential(*down, nn.Flatten(), nn.Linear(widths[-1] * 16, 1))
        up, back = [], widths[::-1]
        for a, b in zip(back[:-1], back[1:]):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
        self.generator = nn.Sequential(nn.Linear(latent, widths[-1] * 16), nn.ReLU(),
                                       nn.Unflatten(1, (widths[-1], 4, 4)), *up[:-1])
