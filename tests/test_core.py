"""The bottom layer's helpers on their own: option validators, input and target checks, the shared blur."""
import pytest
import torch
from scipy import ndimage

from course_utils.core.checks import (check_input, check_non_negative, check_positive_int, check_seed,
                                      check_target)
from course_utils.core.filters import gaussian_blur


@pytest.mark.parametrize("value", [0, -3, 2.0, True, "4", None])
def test_positive_int_rejects_everything_but_an_int_of_at_least_one(value):
    with pytest.raises(ValueError, match=r"n_masks must be a positive int, not"):
        check_positive_int("n_masks", value)


def test_positive_int_and_seed_say_what_none_means_when_they_allow_it():
    assert check_positive_int("batch_size", 3) == 3
    assert check_positive_int("batch_size", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"or None \(automatic\), not 0"):
        check_positive_int("batch_size", 0, allow_none=True, none_means="automatic")
    assert check_seed(0) == 0 and check_seed(None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"seed must be an int, not None"):
        check_seed(None)
    with pytest.raises(ValueError, match=r"seed must be an int or None \(a fresh random seed\), not 1.5"):
        check_seed(1.5, allow_none=True, none_means="a fresh random seed")
    assert check_non_negative("lr", 0) == 0.0
    for bad in (-1e-9, float("inf"), float("nan"), False):
        with pytest.raises(ValueError, match="lr must be a finite number"):
            check_non_negative("lr", bad)


def test_input_and_target_checks():
    x = torch.zeros(2, 1, 5, requires_grad=True)
    assert not check_input(x).requires_grad
    with pytest.raises(ValueError, match="batched"):
        check_input(torch.zeros(1, 5))
    assert check_target(1, 2, 3, "cpu").tolist() == [1, 1]
    with pytest.raises(ValueError, match="out of range"):
        check_target([0, 3], 2, 3, "cpu")


def test_the_blur_checks_sigma_and_padding_and_caps_the_reflected_radius():
    x = torch.rand(1, 1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(x, 0.0)
    with pytest.raises(ValueError, match="padding"):
        gaussian_blur(x, 1.0, padding="circular")
    # σ = 2 asks for radius 6 > size − 1 = 3: reflect uses radius 3 (SciPy's radius is int(truncate σ + 0.5)),
    # replicate the full 6
    mirror = ndimage.gaussian_filter1d(x.numpy(), 2.0, axis=-1, mode="mirror", truncate=1.5)
    nearest = ndimage.gaussian_filter1d(x.numpy(), 2.0, axis=-1, mode="nearest", truncate=3.0)
    torch.testing.assert_close(gaussian_blur(x, 2.0, padding="reflect"), torch.from_numpy(mirror))
    torch.testing.assert_close(gaussian_blur(x, 2.0), torch.from_numpy(nearest))
