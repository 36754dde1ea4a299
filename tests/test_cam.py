"""CAM family (CAM, Grad-CAM, Grad-CAM++) against captum, pytorch-grad-cam, a hand computation, and properties.

What is compared with what:

- Grad-CAM vs captum ``LayerGradCam(relu_attributions=True)`` followed by ``LayerAttribution.interpolate``
  (mode linear in 1-D, bilinear in 2-D; both use ``F.interpolate`` with ``align_corners=False``): the
  un-normalised maps at input size, 1-D and 2-D, last convolution and an inner layer.
- Grad-CAM and Grad-CAM++ vs pytorch-grad-cam, whose public output is min–max normalised and resized with
  cv2: we compare at layer resolution, before its normalisation, using its own pieces — its
  ``ActivationsAndGradients`` hooks, its ``get_cam_weights`` and ``get_cam_image`` (ReLU as in its
  ``compute_cam_per_layer``) — upsampled with captum's ``interpolate``; and, for Grad-CAM, its full normalised
  output on a full-resolution layer, where its resize is the identity. pytorch-grad-cam adds ε = 1e-6 to the
  Grad-CAM++ denominator and 1e-7 to the normalising maximum (the papers have neither), so these cases use a
  head whose weights are bounded away from 0 and, for Grad-CAM++, the last post-ReLU layer, where every
  nonzero gradient is ±W[c, k]/64 (≥ 0.78): that keeps the ε terms below 1e-6 relative. At inner layers the
  gradients can be arbitrarily small and pytorch-grad-cam's ε changes Grad-CAM++ visibly, so it is not
  compared there.
- CAM vs ``Σ_k W[c, k] f_k`` computed by hand from ``model.features`` (Zhou 2016, Eq. 2), and vs Grad-CAM at
  the global-average-pool input, where they agree up to the positive factor ``H·W`` (a known identity).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam
from pytorch_grad_cam import GradCAM as PgcGradCAM
from pytorch_grad_cam import GradCAMPlusPlus as PgcGradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from course_utils.explainers import get
from course_utils.explainers.cam import CAM, GradCAM, GradCAMPlusPlus
from course_utils.models.architectures import VGG7, ShallowCNN1D

NAMES = ["cam", "gradcam", "gradcam++"]


def make_case(kind: str, n: int = 3, strong_head: bool = False):
    """A random-init model (fixed seed) in eval mode, an input batch and per-sample targets.

    ``strong_head`` sets the classifier weights to ±U(50, 100) (random signs), so that gradients at the
    features are of order 1 instead of 1e-3 (see the module docstring).
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        if kind == "1d":
            model, x = ShallowCNN1D(), torch.randn(n, 1, 40)
        else:
            model, x = VGG7(), torch.rand(n, 3, 32, 32)
        if strong_head:
            w = model.classifier.weight
            w.data = torch.sign(torch.randn_like(w)) * (50 + 50 * torch.rand_like(w))
    return model.eval(), x, torch.arange(n) % 4


@pytest.fixture(params=["1d", "2d"])
def case(request):
    return make_case(request.param)


def assert_matches(ours: torch.Tensor, theirs: torch.Tensor, rtol: float = 1e-5):
    """Equal up to float32 rounding, measured relative to the oracle's largest magnitude."""
    assert theirs.abs().max() > 0, "degenerate oracle (all-zero map)"
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=rtol * theirs.abs().max().item())


def interpolate(maps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """captum's upsampling of layer maps to the input size, broadcast over the input channels."""
    mode = "linear" if x.dim() == 3 else "bilinear"
    return LayerAttribution.interpolate(maps, tuple(x.shape[2:]), mode).expand_as(x)


def pgc_pieces(pgc, model, x, t):
    """Activations and gradients from pytorch-grad-cam's own hooks, after one backward of Σ y_c."""
    outputs = pgc.activations_and_grads(x)
    model.zero_grad()
    sum(ClassifierOutputTarget(int(c))(o) for c, o in zip(t, outputs)).backward()
    return (pgc.activations_and_grads.activations[0].numpy(), pgc.activations_and_grads.gradients[0].numpy())


def test_registered_names():
    assert (get("cam"), get("gradcam"), get("gradcam++")) == (CAM, GradCAM, GradCAMPlusPlus)


def last_conv(model: nn.Module) -> nn.Module:
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))][-1]


def last_block_end(model: nn.Module) -> int:
    """Length of the ``features`` prefix that ends with the last convolution's ReLU, read off by hand."""
    return len(model.features) if isinstance(model, ShallowCNN1D) else len(model.features) - 1   # VGG7: pool


@pytest.mark.parametrize("layer", ["last conv", "features.2"])
def test_gradcam_matches_captum(case, layer):
    model, x, t = case
    module = last_conv(model) if layer == "last conv" else dict(model.named_modules())[layer]
    theirs = LayerGradCam(model, module).attribute(x, t, relu_attributions=True)
    assert_matches(GradCAM(model, layer=module).attribute(x, t), interpolate(theirs, x))


def test_gradcam_without_relu_matches_captum(case):
    model, x, t = case
    layer = last_conv(model)
    theirs = LayerGradCam(model, layer).attribute(x, t, relu_attributions=False)
    assert_matches(GradCAM(model, layer=layer, relu=False).attribute(x, t), interpolate(theirs, x))


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_default_layer_is_the_rectified_last_conv_block(case, cls):
    """The papers' A^k are rectified feature maps: by default the CAMs read the ReLU after the last conv."""
    model, x, t = case
    end = last_block_end(model)
    relu = model.features[end - 1]
    assert isinstance(relu, nn.ReLU) and isinstance(model.features[end - 2], (nn.Conv1d, nn.Conv2d))
    assert cls(model).layer is relu
    activations, _ = cls(model)._activations_and_gradients(x, t)
    with torch.no_grad():
        rectified = model.features[:end](model.normalize(x))
    torch.testing.assert_close(activations, rectified)
    assert activations.min() >= 0
    theirs = LayerGradCam(model, relu).attribute(x, t, relu_attributions=True)
    if cls is GradCAM:
        assert_matches(cls(model).attribute(x, t), interpolate(theirs, x))
    before = cls(model, layer=last_conv(model)).attribute(x, t)
    assert (cls(model).attribute(x, t) - before).abs().max() > 1e-3 * before.abs().max()


def test_default_layer_falls_back_to_the_last_conv_without_relu_module():
    model = FunctionalReLUNet(False)
    assert GradCAM(model).layer is model.conv2


@pytest.mark.parametrize("ours_cls, pgc_cls", [(GradCAM, PgcGradCAM), (GradCAMPlusPlus, PgcGradCAMPlusPlus)])
def test_matches_pytorch_grad_cam_at_layer_resolution(ours_cls, pgc_cls):
    """VGG7 2-D at the last block's ReLU (16×16): pgc ``get_cam_image`` + ReLU, upsampled by captum."""
    model, x, t = make_case("2d", strong_head=True)
    layer = model.features[8]
    pgc = pgc_cls(model, [layer])
    activations, gradients = pgc_pieces(pgc, model, x, t)
    maps = np.maximum(pgc.get_cam_image(x, layer, None, activations, gradients), 0)
    pgc.activations_and_grads.release()
    theirs = interpolate(torch.from_numpy(maps)[:, None], x)
    assert_matches(ours_cls(model, layer="features.8").attribute(x, t), theirs)


def test_gradcam_plus_plus_matches_pytorch_grad_cam_weights_in_1d():
    """ShallowCNN1D at its last ReLU: pgc's hooks and ``get_cam_weights`` (it has no 1-D ``get_cam_image``)."""
    model, x, t = make_case("1d", strong_head=True)
    layer = model.features[5]
    pgc = PgcGradCAMPlusPlus(model, [layer])
    activations, gradients = pgc_pieces(pgc, model, x, t)
    weights = pgc.get_cam_weights(x, layer, None, activations, gradients)
    pgc.activations_and_grads.release()
    maps = np.maximum((weights[:, :, None] * activations).sum(1), 0)
    theirs = interpolate(torch.from_numpy(maps)[:, None], x)
    assert_matches(GradCAMPlusPlus(model, layer=layer).attribute(x, t), theirs)


def test_normalized_gradcam_matches_pytorch_grad_cam_output():
    """pgc's full public output (min–max scaled, cv2-resized) on a full-resolution layer (features.3, 32×32)."""
    model, x, t = make_case("2d", strong_head=True)
    with PgcGradCAM(model, [model.features[3]]) as pgc:
        theirs = torch.from_numpy(pgc(x, [ClassifierOutputTarget(int(c)) for c in t]))
    ours = GradCAM(model, layer="features.3", normalize=True).attribute(x, t)
    assert_matches(ours[:, 0], theirs, rtol=1e-5)


@pytest.mark.parametrize("relu", [True, False])
def test_cam_is_classifier_weighted_sum_of_pooled_features(case, relu):
    model, x, t = case
    with torch.no_grad():
        features = model.features(model.normalize(x))
    maps = torch.einsum("nk...,nk->n...", features, model.classifier.weight[t])[:, None]
    expected = interpolate(maps.clamp_min(0) if relu else maps, x)
    assert_matches(CAM(model, relu=relu).attribute(x, t), expected)


def test_cam_equals_gradcam_at_pooled_features_up_to_positive_scale(case):
    """Grad-CAM at the GAP input has α_k = W[c, k] / (H·W), so CAM = H·W · Grad-CAM (ReLU or not)."""
    model, x, t = case
    with torch.no_grad():
        size = model.features(model.normalize(x[:1]))[0, 0].numel()
    for relu in (True, False):
        cam = CAM(model, relu=relu).attribute(x, t)
        grad_cam = GradCAM(model, layer="features", relu=relu).attribute(x, t)
        assert_matches(cam, size * grad_cam)


class FunctionalReLUNet(nn.Module):
    """A tiny 1-D CNN that applies ReLU with ``F.relu`` in ``forward`` (in place after the first conv)."""

    def __init__(self, inplace: bool):
        super().__init__()
        self.inplace = inplace
        self.conv1, self.conv2 = nn.Conv1d(1, 6, 3, padding=1), nn.Conv1d(6, 8, 3, stride=2, padding=1)
        self.pool, self.fc = nn.AdaptiveAvgPool1d(1), nn.Linear(8, 3)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x), inplace=self.inplace)), inplace=self.inplace)
        return self.fc(self.pool(h).flatten(1))


@pytest.mark.parametrize("inplace", [False, True])
def test_functional_relu_model(inplace):
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model, x = FunctionalReLUNet(inplace).eval(), torch.randn(4, 1, 20)
    t = torch.tensor([0, 1, 2, 0])
    with torch.random.fork_rng():
        torch.manual_seed(1)
        reference = FunctionalReLUNet(False).eval()
    for layer in ("conv1", "conv2"):
        theirs = LayerGradCam(reference, getattr(reference, layer)).attribute(x, t, relu_attributions=True)
        assert_matches(GradCAM(model, layer=layer).attribute(x, t), interpolate(theirs, x))
    with torch.no_grad():
        features = F.relu(reference.conv2(F.relu(reference.conv1(x))))
    maps = torch.einsum("nkl,nk->nl", features, reference.fc.weight[t])[:, None].clamp_min(0)
    assert_matches(CAM(model).attribute(x, t), interpolate(maps, x))


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_per_sample(case, name):
    model, x, t = case
    explainer = get(name)(model)
    single = torch.cat([explainer.attribute(x[i:i + 1], t[i:i + 1]) for i in range(len(x))])
    assert_matches(explainer.attribute(x, t), single)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_broadcast_and_normalize(case, name):
    model, x, t = case
    attr = get(name)(model).attribute(x, t)
    assert attr.shape == x.shape and (attr == attr[:, :1]).all() and (attr >= 0).all()
    assert torch.equal(get(name)(model).explain(x, t), attr[:, 0])
    normed = get(name)(model, normalize=True).explain(x, t).flatten(1)
    for raw, scaled in zip(attr[:, 0].flatten(1), normed):
        if raw.max() > raw.min():
            expected = (raw - raw.min()) / (raw.max() - raw.min())
            assert_matches(scaled, expected)
        else:
            assert (scaled == 0).all()


def test_default_target_is_prediction(case):
    model, x, _ = case
    predicted = model(x).argmax(1)
    for name in NAMES:
        assert torch.equal(get(name)(model).attribute(x), get(name)(model).attribute(x, predicted))


def hooks_left(model: nn.Module) -> int:
    return sum(len(d) for m in model.modules() for d in (m._forward_hooks, m._forward_pre_hooks,
                                                         m._backward_hooks, m._backward_pre_hooks))


@pytest.mark.parametrize("name", NAMES)
def test_model_state_restored(name):
    model, x, t = make_case("2d", n=2)
    reference = get(name)(model).attribute(x, t)
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    model.train()
    model.features[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    assert_matches(get(name)(model).attribute(x, t), reference)
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert hooks_left(model) == 0
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise(name):
    model, x, t = make_case("1d")
    explainer = get(name)(model)
    bad = [(x[0], t), (x.long(), t), (x.clone().index_fill_(2, torch.tensor([3]), float("nan")), t),
           (x, torch.tensor([0, 1, 10])), (x, torch.tensor([0, 1]))]
    for inputs, target in bad:
        with pytest.raises(ValueError):
            explainer.attribute(inputs, target)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_layer_not_in_model_raises(cls):
    model = ShallowCNN1D()
    for layer in ("features.9", nn.Conv1d(1, 1, 3), 3):
        with pytest.raises(ValueError):
            cls(model, layer=layer)


def test_layer_that_is_not_run_or_not_a_feature_map_raises():
    model, x, t = make_case("1d")
    model.unused = nn.Conv1d(1, 1, 3)
    with pytest.raises(ValueError, match="ran 0 times"):
        GradCAM(model, layer="unused").attribute(x, t)
    with pytest.raises(ValueError, match="does not carry"):
        GradCAM(model, layer="classifier").attribute(x, t)
    assert hooks_left(model) == 0


def test_cam_without_gap_linear_head_raises():
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 38, 3))
    with pytest.raises(ValueError, match="GradCAM"):
        CAM(model)
