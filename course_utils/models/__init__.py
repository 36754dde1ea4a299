"""The course models and their shipped weights.

Both models normalise their input inside ``forward`` (module ``normalize``), so explainers work in raw input
space: an HMT image lies in [0, 1] and black is 0; an MNIST-1D signal is the generator's raw output.
Both end in ``features`` → global average pool → ``classifier`` (one ``nn.Linear``), so CAM applies to both.
"""
from course_utils.models.architectures import Normalize, ShallowCNN1D, VGG7
from course_utils.models.generative import GAN, VAE, SignalGAN, SignalVAE, TileGAN, TileVAE
from course_utils.models.pretrained import load_checkpoint, load_generator, load_pretrained, save_checkpoint

__all__ = ["GAN", "Normalize", "ShallowCNN1D", "SignalGAN", "SignalVAE", "TileGAN", "TileVAE", "VAE", "VGG7",
           "load_checkpoint", "load_generator", "load_pretrained", "save_checkpoint"]
