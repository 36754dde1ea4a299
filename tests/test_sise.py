"""SISE (Sattarzadeh et al. 2021): layer choice, gradient-based map selection, Otsu fusion, contract checks."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.explainers.sise import SISE, block_ends, fuse, normalize, otsu_gate, select_feature_maps
from course_utils.models.architectures import VGG7, ShallowCNN1D


@pytest.fixture(scope="module")
def cnn1d():
    torch.manual_seed(0)
    return ShallowCNN1D(channels=16).eval()


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(1)
    return VGG7().eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def test_block_ends_are_the_layers_before_each_downsampling(cnn1d, vgg, signals, images):
    f = vgg.features
    assert block_ends(vgg, images) == [f[3], f[8]]  # the ReLUs feeding both max-pools
    g = cnn1d.features
    assert block_ends(cnn1d, signals) == [g[1], g[5]]  # before the stride-2 conv, and the last ReLU


@pytest.mark.parametrize("which", ["1d", "2d"])
def test_maps_are_in_unit_range_deterministic_and_batched(which, cnn1d, vgg, signals, images):
    model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
    explainer = SISE(model, batch_size=50)
    attr = explainer.attribute(x)
    assert attr.shape == x.shape
    assert attr.min() >= 0 and attr.max() <= 1
    assert torch.allclose(attr.flatten(1).amax(1), torch.ones(x.shape[0]))
    assert torch.equal(attr[:, :1].expand_as(attr), attr)
    assert torch.equal(attr, SISE(model, batch_size=50).attribute(x))
    alone = torch.cat([explainer.attribute(x[i:i + 1]) for i in range(x.shape[0])])
    torch.testing.assert_close(attr, alone, rtol=1e-4, atol=1e-5)
    assert explainer.explain(x).shape == (x.shape[0],) + tuple(x.shape[2:])


class ThreeChannelNet(nn.Module):
    """conv(1→3) → ReLU → global average pool → linear, with class-1 weights = −class-0 weights.

    ∂P_0/∂A_k = 2 P_0 P_1 w_k / L, so the sign of the average gradient of map k is the sign of w_k.
    """

    def __init__(self, w):
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.features[0].weight.copy_(torch.tensor([[[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]]]))
            self.features[0].bias.zero_()
            self.classifier.weight.copy_(torch.stack([w, -w]))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def test_selection_drops_maps_with_non_positive_average_gradient():
    model = ThreeChannelNet(torch.tensor([1.0, -1.0, 0.0])).eval()
    x = torch.rand(2, 1, 12, generator=torch.Generator().manual_seed(4)) + 0.1
    target = torch.zeros(2, dtype=torch.long)
    explainer = SISE(model)
    ((acts, grads),) = explainer.feature_maps(x, target)
    assert (grads[:, 0] > 0).all() and (grads[:, 1] < 0).all() and (grads[:, 2] == 0).all()
    assert select_feature_maps(grads).tolist() == [[True, False, False]] * 2
    # Only map 0 (= x itself after the identity kernel) survives: one layer, one mask, so SISE gives that
    # map min-max normalised.
    attr = explainer.attribute(x, target)[:, 0]
    expected = (x[:, 0] - x[:, 0].amin(1, keepdim=True)) / (x[:, 0].amax(1, keepdim=True)
                                                            - x[:, 0].amin(1, keepdim=True))
    torch.testing.assert_close(attr, expected)


def test_selection_threshold_mu():
    grads = torch.tensor([[3.0, 1.0, 2.0, -1.0], [-1.0, -2.0, -0.5, -3.0]])
    assert select_feature_maps(grads, 0.5).tolist() == [[True, False, True, False], [False] * 4]
    assert select_feature_maps(grads, 0.0).tolist() == [[True, True, True, False], [False] * 4]


def brute_force_otsu(values: np.ndarray) -> np.ndarray:
    """Gate from Otsu's criterion searched over every split between sorted distinct values."""
    levels = np.unique(values)
    best, gate = -1.0, np.ones_like(values, dtype=bool)
    for cut in (levels[:-1] + levels[1:]) / 2:
        low, high = values[values <= cut], values[values > cut]
        w0, w1 = len(low) / len(values), len(high) / len(values)
        score = w0 * w1 * (low.mean() - high.mean()) ** 2
        if score > best:
            best, gate = score, values > cut
    return gate


def test_otsu_gate_matches_a_brute_force_search():
    g = torch.Generator().manual_seed(5)
    # Values at histogram-bin centres, from two overlapping clusters, so the histogram loses nothing.
    levels = torch.cat([torch.randint(20, 120, (3, 150), generator=g),
                        torch.randint(90, 230, (3, 100), generator=g)], 1)
    maps = (levels.double() + 0.5) / 256
    gate = otsu_gate(maps)
    for row, got in zip(maps.numpy(), gate.numpy()):
        assert (got == brute_force_otsu(row)).all()
    assert otsu_gate(torch.full((1, 5), 0.3)).all()


def test_fusion_on_hand_made_maps():
    shallow = torch.tensor([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.5, 0.1]])
    deep = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]])
    # (shallow + deep) ⊙ [deep > Otsu] = [0, 0, 0, 0, 1.8, 2, 1.5, 1.1], then divided by its maximum 2.
    torch.testing.assert_close(fuse([shallow, deep]),
                               torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.9, 1.0, 0.75, 0.55]]))
    deeper = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    # Next block: ([0, 0, 0, 0, 1.8, 2, 1.5, 1.1] + deeper) ⊙ [deeper > Otsu] = [0, …, 0, 3, 2.5, 0] / 3.
    torch.testing.assert_close(fuse([shallow, deep, deeper]),
                               torch.tensor([[0, 0, 0, 0, 0, 1.0, 2.5 / 3, 0]]))
    # A layer without information (constant map, e.g. no map kept) leaves the running result unchanged.
    torch.testing.assert_close(fuse([shallow, deep, torch.zeros(1, 8)]), fuse([shallow, deep]))
    torch.testing.assert_close(normalize(torch.tensor([[2.0, 4.0, 3.0], [1.0, 1.0, 1.0]])),
                               torch.tensor([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]))


def test_explicit_layers(vgg, images):
    attr = SISE(vgg, layers=["features.8"]).attribute(images, 2)
    assert attr.shape == images.shape and attr.max() <= 1


def test_model_state_is_restored_even_after_an_error(images):
    torch.manual_seed(6)
    model = VGG7()
    model.unused = nn.ReLU()  # a module that never runs: SISE cannot read feature maps from it
    model.features[0].bias.requires_grad_(False)
    before = [(m.training, len(m._forward_hooks), len(m._backward_hooks)) for m in model.modules()]
    grads = [p.requires_grad for p in model.parameters()]
    SISE(model).attribute(images)
    with pytest.raises(ValueError):
        SISE(model, layers=[model.features[3], model.unused]).attribute(images)
    assert [(m.training, len(m._forward_hooks), len(m._backward_hooks)) for m in model.modules()] == before
    assert [p.requires_grad for p in model.parameters()] == grads


@pytest.mark.parametrize("options", [{"mu": 1.0}, {"mu": -0.1}, {"layers": "features.3"}, {"layers": []},
                                     {"layers": [nn.ReLU()]}, {"layers": ["nope"]}, {"batch_size": 0},
                                     {"layers": ["features.3", "features.3"]}])
def test_bad_options_raise(options, vgg):
    with pytest.raises(ValueError):
        SISE(vgg, **options)


def test_bad_inputs_raise(vgg, images):
    with pytest.raises(ValueError):
        SISE(vgg).attribute(images[0, 0])
    with pytest.raises(ValueError):
        SISE(vgg).attribute(images, target=9)
    with pytest.raises(ValueError):
        SISE(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))).attribute(images)
