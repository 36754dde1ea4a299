"""Datasets of the course: MNIST-1D (Greydanus 2020) and the HMT histology tiles (Kather et al. 2016)."""
from course_utils.data.hmt import HMT_CLASSES, HMTDataset, find_hmt, hmt
from course_utils.data.mnist1d import MNIST1DDataset, TwoDigitComposites, make_mnist1d, mnist1d, two_digit_composites
from course_utils.data.download import download_hmt

__all__ = ["HMT_CLASSES", "HMTDataset", "MNIST1DDataset", "TwoDigitComposites", "download_hmt", "find_hmt", "hmt",
           "make_mnist1d", "mnist1d", "two_digit_composites"]
