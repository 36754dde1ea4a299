"""Acceptable variations (course_utils.variations): the composite equation, R as printed, the latent search
lowering its loss (GAN: R-weighted reconstruction + the discriminator's realism; VAE: the prior, the
comparison), seeding, the generator left as found, input checks, judge; the VAE's loss by hand."""
import math

import pytest
import torch

from course_utils.models import SignalGAN, SignalVAE, TileVAE
from course_utils.variations import acceptable_variations, context_weights, judge, objective


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return SignalVAE(latent=4, channels=8).eval()


@pytest.fixture(scope="module")
def signals():
    return torch.randn(3, 1, 40, generator=torch.Generator().manual_seed(1))


def region_of(n, length=40, start=10, stop=20):
    region = torch.zeros(n, length)
    region[:, start:stop] = 1
    return region


def test_shapes_and_the_input_is_kept_outside_the_region(vae, signals):
    region = region_of(3)
    out = acceptable_variations(vae, signals, region, n_variations=4, steps=5, progress=False)
    assert out.inputs.shape == (3, 4, 1, 40) and out.generated.shape == (3, 4, 1, 40)
    assert out.z.shape == (3, 4, 4) and out.outside_mse.shape == (3, 4)
    outside = region == 0
    for k in range(4):
        assert torch.equal(out.inputs[:, k, 0][outside], signals[:, 0][outside])
        assert torch.equal(out.inputs[:, k, 0][~outside], out.generated[:, k, 0][~outside])
    assert not torch.allclose(out.inputs[:, 0], out.inputs[:, 1])      # different starts, different variations


def test_optimisation_fits_the_context_and_the_prior_pulls_z_in(vae, signals):
    region = region_of(3)
    few = acceptable_variations(vae, signals, region, n_variations=2, steps=1, progress=False)
    many = acceptable_variations(vae, signals, region, n_variations=2, steps=60, lr=0.05, progress=False)
    assert (many.outside_mse < few.outside_mse).all()
    # the outside error reported is the raw-unit mean over the positions outside B
    squared = (many.generated[:, :, 0] - signals[:, 0].unsqueeze(1)).square()
    manual = squared[:, :, :10].sum(-1) + squared[:, :, 20:].sum(-1)
    torch.testing.assert_close(many.outside_mse, manual / 30)
    strong = acceptable_variations(vae, signals, region, n_variations=2, steps=60, context_weight=1e4,
                                   progress=False)
    assert strong.z.norm(dim=-1).mean() < 0.2 * many.z.norm(dim=-1).mean()


def test_a_region_covering_everything_leaves_only_the_prior(vae, signals):
    # no context (R = 0 everywhere): the loss is ½‖z‖², whose Adam path from z₀ shrinks every coordinate
    # towards 0
    out = acceptable_variations(vae, signals, torch.ones(3, 40), n_variations=2, steps=300, lr=0.05,
                                progress=False)
    assert out.z.abs().max() < 0.05
    assert torch.equal(out.inputs, out.generated)


@pytest.fixture(scope="module")
def gan():
    torch.manual_seed(0)
    return SignalGAN(latent=4, channels=8).eval()


def test_context_weights_are_the_inverted_box_convolved_s_wide():
    # oracle: a loop over positions in float64, the mean of 1 − B over the window's positions inside the input
    region = torch.zeros(2, 12, dtype=torch.float64)
    region[0, 4:8] = 1
    region[1, :3] = 1
    for s in (1, 3, 5):
        expected = torch.empty_like(region)
        for n in range(2):
            for i in range(12):
                window = [1 - region[n, j] for j in range(i - s // 2, i + s // 2 + 1) if 0 <= j < 12]
                expected[n, i] = sum(window) / len(window)
        torch.testing.assert_close(context_weights(region, s), expected)
    assert context_weights(region, 3)[0].tolist()[3:9] == pytest.approx([2 / 3, 1 / 3, 0, 0, 1 / 3, 2 / 3])
    image = torch.zeros(1, 9, 9, dtype=torch.float64)
    image[0, 2:7, 3:6] = 1
    weights = context_weights(image, 3)
    by_hand = [[sum(1 - image[0, a, b] for a in range(i - 1, i + 2) for b in range(j - 1, j + 2)
                    if 0 <= a < 9 and 0 <= b < 9) / sum(1 for a in range(i - 1, i + 2) for b in range(j - 1, j + 2)
                                                         if 0 <= a < 9 and 0 <= b < 9) for j in range(9)]
               for i in range(9)]
    torch.testing.assert_close(weights[0], torch.tensor(by_hand, dtype=torch.float64))
    for bad in (2, 0, 1.0, True):
        with pytest.raises(ValueError, match="window"):
            context_weights(image, bad)


def test_composite_equation_with_a_soft_region(gan, signals):
    region = torch.rand(3, 40, generator=torch.Generator().manual_seed(3))
    out = acceptable_variations(gan, signals, region, n_variations=2, steps=3, progress=False)
    b = region[:, None, None, :]
    expected = signals[:, None] * (1 - b) + b * out.generated
    torch.testing.assert_close(out.inputs, expected)
    torch.testing.assert_close(out.generated, gan.decode(out.z.flatten(0, 1)).view_as(out.generated))


def test_gan_latent_search_lowers_its_loss_and_the_loss_is_as_printed(gan, signals):
    region = region_of(3)
    out = acceptable_variations(gan, signals, region, n_variations=2, steps=80, lr=0.05, progress=False)
    assert out.loss.shape == (80, 3, 2) and (out.loss[-1] < out.loss[0]).all()
    # the first recorded loss is the objective at z₀, by hand: Σ R (G(z) − X)² + λ (−log σ(D(X′)))
    z0 = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fake = gan.generator(z0)
        target = gan.normalize(signals).repeat_interleave(2, 0)
        r = context_weights(region, 3).unsqueeze(1).repeat_interleave(2, 0)
        b = region.unsqueeze(1).repeat_interleave(2, 0)
        realism = -torch.log(torch.sigmoid(gan.discriminator(target * (1 - b) + b * fake).squeeze(1)))
        expected = (r * (fake - target) ** 2).flatten(1).sum(1) + realism
    torch.testing.assert_close(out.loss[0].flatten(), expected)


def test_the_realism_term_raises_the_discriminators_score(signals):
    torch.manual_seed(0)
    gan = SignalGAN(latent=4, channels=8).eval()
    with torch.no_grad():
        gan.discriminator[-1].weight.mul_(50)                         # a discriminator with an opinion
    region = region_of(3)
    score = lambda weight: gan.realism_logit(acceptable_variations(
        gan, signals, region, n_variations=4, steps=60, context_weight=weight, progress=False)
        .inputs.flatten(0, 1)).mean().item()
    assert score(100.0) > score(0.0) + 0.5


def test_judge_splits_acceptable_and_counterfactual(gan, signals):
    from course_utils.models.architectures import ShallowCNN1D
    torch.manual_seed(0)
    model = ShallowCNN1D(channels=8).eval()
    out = acceptable_variations(gan, signals, region_of(3), n_variations=4, steps=3, progress=False)
    target = torch.tensor([0, 1, 2])
    verdict = judge(model, gan, out, target, threshold=0.5)
    flat = out.inputs.flatten(0, 1)
    with torch.no_grad():
        realism = torch.sigmoid(gan.realism_logit(flat)).view(3, 4)
        keeps = model(flat).argmax(1).view(3, 4) == target[:, None]
    torch.testing.assert_close(verdict["realism"], realism)
    assert torch.equal(verdict["acceptable"], (realism >= 0.5) & keeps)
    assert torch.equal(verdict["counterfactual"], (realism >= 0.5) & ~keeps)
    assert not (verdict["acceptable"] & verdict["counterfactual"]).any()
    with pytest.raises(ValueError, match="GAN"):
        judge(model, SignalVAE(latent=4, channels=8), out, target, threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        judge(model, gan, out, target, threshold=1.5)


def test_same_seed_same_variations_other_seed_other_variations(vae, signals):
    run = lambda seed: acceptable_variations(vae, signals, region_of(3), n_variations=2, steps=5, seed=seed,
                                             progress=False).inputs
    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_generator_is_left_as_found(vae, signals):
    vae.train()
    acceptable_variations(vae, signals, region_of(3), n_variations=1, steps=3, progress=False)
    assert vae.training
    assert all(p.requires_grad and p.grad is None for p in vae.parameters())
    vae.eval()


def test_images_with_the_tile_vae():
    torch.manual_seed(0)
    tiles = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    region = torch.zeros(2, 64, 64)
    region[:, 16:40, 8:30] = 1
    out = acceptable_variations(TileVAE(latent=4, channels=(4, 4, 4, 4)).eval(), tiles, region, n_variations=2,
                                steps=2, progress=False)
    assert out.inputs.shape == (2, 2, 3, 64, 64)
    clipped = acceptable_variations(TileVAE(latent=4, channels=(4, 4, 4, 4)).eval(), tiles, region,
                                    n_variations=2, steps=2, value_range=(0.4, 0.6), progress=False)
    assert clipped.generated.min() >= 0.4 and clipped.generated.max() <= 0.6
    with pytest.raises(ValueError):
        acceptable_variations(TileVAE(latent=4, channels=(4, 4, 4, 4)), tiles, region, value_range=(1, 0))
    assert torch.equal(out.inputs[:, :, :, 0:16], tiles.unsqueeze(1)[:, :, :, 0:16].expand(-1, 2, -1, -1, -1))


def test_vae_loss_by_hand(vae):
    # with logvar = 0 and μ = 0 the KL is 0; a zero decoder makes the loss ½ Σ normalize(x)²
    x = torch.randn(2, 1, 40, generator=torch.Generator().manual_seed(5))
    model = SignalVAE(latent=4, channels=8, mean=0.5, std=2.0)
    for module in (model.encoder[-1], model.decoder[-1]):
        torch.nn.init.zeros_(module.weight)
        torch.nn.init.zeros_(module.bias)
    expected = (0.5 * ((x - 0.5) / 2).square().flatten(1).sum(1)).mean()
    torch.testing.assert_close(model.loss(x, torch.Generator().manual_seed(0)), expected)
    assert math.isclose(model.decode(torch.zeros(1, 4)).mean().item(), 0.5)   # decoded back to raw units


@pytest.mark.parametrize("bad", [
    {"x": torch.randn(3, 40)}, {"x": torch.ones(3, 1, 40, dtype=torch.long)}, {"region": torch.zeros(3, 1, 40)},
    {"region": torch.full((3, 40), 2.0)}, {"region": [[0.0] * 40] * 3}, {"n_variations": 0}, {"steps": 1.5},
    {"lr": 0}, {"context_weight": -1.0}, {"seed": "a"}, {"generator": torch.nn.Linear(2, 2)},
    {"x": torch.randn(3, 1, 32), "region": torch.zeros(3, 32)},
])
def test_bad_input_raises(bad, vae, signals):
    args = {"generator": vae, "x": signals, "region": region_of(3)} | bad
    with pytest.raises(ValueError):
        acceptable_variations(args.pop("generator"), args.pop("x"), args.pop("region"), progress=False, **args)


@pytest.mark.parametrize("name", ["mnist1d", "hmt"])
def test_shipped_generators_are_small_and_make_the_classifiers_inputs(name):
    from course_utils.models import load_generator
    from course_utils.models.pretrained import GENERATORS, WEIGHTS_DIR
    assert (WEIGHTS_DIR / GENERATORS[name]).stat().st_size < 1_000_000
    generator, meta = load_generator(name, device="cpu", with_metadata=True)
    shape = (1, 40) if name == "mnist1d" else (3, 64, 64)
    assert generator.decode(torch.zeros(2, generator.latent)).shape == (2, *shape)
    assert meta["dataset"] == name and {"seed", "reconstruction_accuracy", "train_seconds", "versions"} <= set(meta)


def test_shipped_mnist1d_generator_matches_its_metadata(shared_data):
    # (the HMT generator's figures are recomputed the same way, but loading the HMT test tiles is slow)
    from course_utils.data import mnist1d
    from course_utils.models import load_generator, load_pretrained
    from course_utils.train import generator_quality
    generator, meta = load_generator("mnist1d", device="cpu", with_metadata=True)
    quality = generator_quality(generator, load_pretrained("mnist1d", device="cpu"),
                                mnist1d("test", root=shared_data / "mnist1d"), seed=meta["seed"])
    assert quality["reconstruction_accuracy"] == pytest.approx(meta["reconstruction_accuracy"], abs=1e-9)
    assert quality["test_reconstruction_mse"] == pytest.approx(meta["test_reconstruction_mse"], rel=1e-4)
    with pytest.raises(ValueError):
        load_generator("imagenet")


def test_fit_vae_lowers_the_loss_and_is_seeded():
    from course_utils.train import TrainConfig, fit_vae
    x = torch.randn(64, 1, 40, generator=torch.Generator().manual_seed(7))
    config = TrainConfig(epochs=3, lr=3e-3, batch_size=16, weight_decay=0.0, val_fraction=0.25)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SignalVAE(latent=4, channels=8)
        history = fit_vae(model, x, config, device="cpu", progress=False)
        runs.append(model.state_dict())
    assert history.train_loss[-1] < history.train_loss[0]
    assert len(history.val_accuracy) == 3 and all(v > 0 for v in history.val_accuracy)   # held-out MSE
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not model.training
