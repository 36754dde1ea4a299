"""Course kit on visual explanations (XAI) for convolutional networks.

Subpackages: :mod:`course_utils.data` (MNIST-1D, HMT), :mod:`course_utils.models` (ShallowCNN1D, VGG7,
shipped weights), :mod:`course_utils.explainers` (one ``attribute`` verb on every method),
:mod:`course_utils.metrics` (Drop%/Increase%, insertion/deletion, localisation, sanity checks).
"""
from course_utils.core.threads import configure_threads

configure_threads()   # before torch is imported: see course_utils.core.threads

from course_utils.device import get_device, seed_everything  # noqa: E402  (after configure_threads)

__version__ = "0.1.0"
__all__ = ["get_device", "seed_everything", "__version__"]
