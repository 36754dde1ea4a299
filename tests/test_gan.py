"""The poster's GANs (course_utils.models.generative) and their training (course_utils.train.fit_gan): seeded
and deterministic, the discriminator-only epochs leave G alone, the shipped weights small and true to their
metadata, ``--model gan`` on the command line."""
import pytest
import torch

from course_utils.models import SignalGAN, TileGAN
from course_utils.train import TrainConfig, fit_gan

TINY = TrainConfig(epochs=2, lr=2e-3, batch_size=16, weight_decay=0.0, val_fraction=0.25)


def _fit(seed, discriminator_epochs=0, config=TINY):
    x = torch.randn(64, 1, 40, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(0)
    model = SignalGAN(latent=4, channels=4)
    history = fit_gan(model, x, TrainConfig(**{**vars(config), "seed": seed}), "cpu", False, discriminator_epochs)
    return model, history


def test_training_is_deterministic_and_seeded():
    (a, ha), (b, hb) = _fit(0), _fit(0)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert ha.train_loss == hb.train_loss and len(ha.val_accuracy) == 2 and not a.training
    c, _ = _fit(1)
    assert not torch.equal(a.generator[0].weight, c.generator[0].weight)


def test_discriminator_epochs_train_d_alone():
    before, _ = _fit(0)
    after, history = _fit(0, discriminator_epochs=2)
    gen = [k for k in before.state_dict() if k.startswith("generator.")]
    assert all(torch.equal(before.state_dict()[k], after.state_dict()[k]) for k in gen)
    assert not torch.equal(before.discriminator[-1].weight, after.discriminator[-1].weight)
    assert len(history.train_loss) == 4 and all(v != v for v in history.train_loss[2:])   # nan: no G step


def test_losses_by_hand():
    model = SignalGAN(latent=4, channels=4, mean=0.5, std=2.0)
    torch.nn.init.zeros_(model.discriminator[-1].weight)
    torch.nn.init.zeros_(model.discriminator[-1].bias)                 # D ≡ 0: σ(D) = ½ everywhere
    x, fake = torch.randn(5, 1, 40), torch.randn(5, 1, 40)
    log2 = torch.log(torch.tensor(2.0))
    torch.testing.assert_close(model.discriminator_loss(x, fake), 2 * log2)
    torch.testing.assert_close(model.generator_loss(fake), log2)
    torch.testing.assert_close(model.realism_logit(x), torch.zeros(5))
    torch.nn.init.zeros_(model.generator[-1].weight)
    torch.nn.init.zeros_(model.generator[-1].bias)
    assert torch.allclose(model.decode(torch.randn(3, 4)), torch.full((3, 1, 40), 0.5))   # raw units


def test_tile_gan_shapes():
    model = TileGAN(latent=4, channels=(4, 4, 4, 4))
    assert model.decode(torch.randn(2, 4)).shape == (2, 3, 64, 64)
    assert model.realism_logit(torch.rand(2, 3, 64, 64)).shape == (2,)


@pytest.mark.parametrize("name", ["mnist1d", "hmt"])
def test_shipped_gans_are_small_with_the_classifiers_metadata(name):
    from course_utils.models import load_generator, load_pretrained
    from course_utils.models.pretrained import GANS, WEIGHTS_DIR
    assert (WEIGHTS_DIR / GANS[name]).stat().st_size <= 2_000_000
    gan, meta = load_generator(name, device="cpu", with_metadata=True, kind="gan")
    _, classifier_meta = load_pretrained(name, device="cpu", with_metadata=True)
    shared = {"dataset", "image_size", "seed", "config", "train_loss", "train_seconds", "versions"}
    assert shared <= set(classifier_meta) and shared <= set(meta)
    assert meta["dataset"] == name and meta["image_size"] == classifier_meta["image_size"]
    shape = (1, 40) if name == "mnist1d" else (3, 64, 64)
    assert gan.decode(torch.zeros(2, gan.latent)).shape == (2, *shape)
    assert {"test_realism", "samples_realism", "samples_confident", "discriminator_epochs"} <= set(meta)


def test_shipped_mnist1d_gan_matches_its_metadata(shared_data):
    from course_utils.data import mnist1d
    from course_utils.models import load_generator, load_pretrained
    from course_utils.train import gan_quality
    gan, meta = load_generator("mnist1d", device="cpu", with_metadata=True, kind="gan")
    quality = gan_quality(gan, load_pretrained("mnist1d", device="cpu"),
                          mnist1d("test", root=shared_data / "mnist1d"), seed=meta["seed"])
    for key in ("test_realism", "samples_realism", "samples_mean_top_softmax"):
        assert quality[key] == pytest.approx(meta[key], abs=1e-4)
    assert meta["test_realism"] > meta["samples_realism"]              # D tells real from generated
    with pytest.raises(ValueError, match="kind"):
        load_generator("mnist1d", kind="diffusion")


def test_command_line_trains_a_gan(shared_data, tmp_path):
    from course_utils.models import load_checkpoint
    from course_utils.train import main
    out = tmp_path / "gan.pt"
    main(["mnist1d", "--model", "gan", "--epochs", "1", "--discriminator-epochs", "0", "--data",
          str(shared_data / "mnist1d"), "--out", str(out), "--device", "cpu"])
    model, meta = load_checkpoint(out)
    assert type(model).__name__ == "SignalGAN" and meta["config"]["epochs"] == 1
    assert meta["discriminator_epochs"] == 0 and len(meta["train_loss"]) == 1
