"""Localisation metrics against hand-computed cases."""
import pytest
import torch

from course_utils.metrics import box_iou, energy_inside, iou_top_k, localisation, pointing_game, threshold_box

T, F = True, False


def test_pointing_game_hits_misses_and_ties():
    maps = torch.tensor([[0.1, 0.9, 0.3, 0.2], [0.1, 0.9, 0.3, 0.2], [1.0, 1.0, 0.0, 0.0]])
    truth = torch.tensor([[F, T, F, F], [T, F, F, F], [F, T, F, F]])
    assert pointing_game(maps, truth).tolist() == [True, False, False]  # tie: index 0 wins, outside


def test_energy_inside_counts_only_the_positive_part():
    maps = torch.tensor([[-1.0, 2.0, 1.0, 1.0], [-1.0, -2.0, 0.0, -3.0]])
    truth = torch.tensor([[F, T, T, F], [T, T, F, F]])
    torch.testing.assert_close(energy_inside(maps, truth), torch.tensor([0.75, 0.0]))


def test_iou_top_k_default_k_is_the_size_of_each_truth():
    maps = torch.tensor([[0.9, 0.8, 0.1, 0.7], [0.9, 0.8, 0.1, 0.7]])
    truth = torch.tensor([[T, F, F, T], [T, T, T, F]])
    # sample 0: top-2 {0, 1} vs {0, 3}: 1 / 3. sample 1: top-3 {0, 1, 3} vs {0, 1, 2}: 2 / 4.
    torch.testing.assert_close(iou_top_k(maps, truth), torch.tensor([1 / 3, 0.5]))
    # k = 3 for both: sample 0: {0, 1, 3} vs {0, 3}: 2 / 3.
    torch.testing.assert_close(iou_top_k(maps, truth, k=3), torch.tensor([2 / 3, 0.5]))


def test_two_dimensional_maps_use_the_row_major_index():
    maps = torch.tensor([[[0.0, 5.0], [5.0, 0.0]]])
    assert pointing_game(maps, torch.tensor([[[F, T], [F, F]]])).tolist() == [True]
    assert pointing_game(maps, torch.tensor([[[F, F], [T, F]]])).tolist() == [False]


def test_localisation_summary():
    maps = torch.tensor([[0.1, 0.9, 0.3, 0.2], [0.9, 0.1, 0.3, 0.2]])
    truth = torch.tensor([[F, T, F, F], [F, T, F, F]])
    out = localisation(maps, truth)
    assert out["pointing game"] == pytest.approx(0.5)
    assert out["energy inside"] == pytest.approx((0.9 / 1.5 + 0.1 / 1.5) / 2)
    assert out["IoU top-k"] == pytest.approx(0.5)


@pytest.mark.parametrize("maps,truth,message", [
    (torch.rand(2, 4), torch.ones(2, 4), "bool"),
    (torch.rand(2, 4), torch.ones(2, 5, dtype=torch.bool), "shaped"),
    (torch.full((2, 4), float("nan")), torch.ones(2, 4, dtype=torch.bool), "NaN"),
])
def test_bad_input_raises_a_clear_value_error(maps, truth, message):
    with pytest.raises(ValueError, match=message):
        localisation(maps, truth)


def test_bad_k_raises():
    with pytest.raises(ValueError, match="k must be"):
        iou_top_k(torch.rand(1, 4), torch.ones(1, 4, dtype=torch.bool), k=5)


def test_threshold_box_closes_the_hot_positions_to_their_bounding_box():
    signal = torch.tensor([[0.0, 0.2, 1.0, 0.1, 0.6, 0.0, 0.0]])   # ≥ 0.5: positions 2 and 4 → the interval 2..4
    assert threshold_box(signal).tolist() == [[False, False, True, True, True, False, False]]
    image = torch.zeros(1, 4, 5)
    image[0, 1, 1], image[0, 2, 3] = 1.0, 0.8
    expected = torch.zeros(1, 4, 5, dtype=torch.bool)
    expected[0, 1:3, 1:4] = True
    assert torch.equal(threshold_box(image), expected)
    assert threshold_box(torch.ones(1, 6)).all()            # a constant map: the whole input
    with pytest.raises(ValueError):
        threshold_box(signal, 1.5)


def test_box_iou_by_hand():
    maps = torch.tensor([[0.0, 0.2, 1.0, 0.1, 0.6, 0.0, 0.0]])
    truth = torch.tensor([[0, 1, 1, 1, 0, 0, 0]]).bool()
    assert box_iou(maps, truth).tolist() == [0.5]           # box {2, 3, 4}, truth {1, 2, 3}: 2 / 4
    assert box_iou(maps, truth, threshold=0.05).tolist() == [3 / 4]   # box {1, …, 4}, truth {1, 2, 3}
