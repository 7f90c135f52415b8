"""Channel visualization (activation maximization) on the real VGG-19: the image excites its channel far
more than a photo does, in every block, and it is a structured pattern, not noise."""

from __future__ import annotations

import pytest
import torch

import nst_core
from nst_core.explore.channels import visualize_channel
from nst_core.explore.metrics import high_frequency_share
from nst_core.image import resize, to_nchw

SIZE, STEPS, SHORT_RUN_LR = 48, 32, 0.2     # a short run: twice the default learning rate
BLOCK_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
MIN_RATIO = 10.0          # the bar: 10x the channel's mean activation on a natural photo
MAX_HF_FACTOR = 4.0       # photo 0.135 here; white noise has 0.80 (5.9x)


@pytest.fixture(scope="module")
def vgg():
    return nst_core.load_vgg(device="cpu")


@pytest.fixture(scope="module")
def photo():
    image = to_nchw(nst_core.load_image(nst_core.example_path("content_chelsea.png")))
    return resize(image, (SIZE, SIZE))


def typical_channel(vgg, photo, layer) -> tuple[int, float]:
    """The channel whose mean activation on the photo is the median of the layer's: a typical channel."""
    with torch.no_grad():
        means = vgg.features(photo, [layer])[layer][0].mean(dim=(1, 2))
    channel = int(means.argsort()[len(means) // 2])
    return channel, float(means[channel])


@pytest.mark.parametrize("layer", BLOCK_LAYERS)
def test_visualization_excites_its_channel_and_is_not_noise(vgg, photo, layer):
    channel, on_photo = typical_channel(vgg, photo, layer)
    assert on_photo > 0.5            # a live channel: the ratio below is not a division by ~0
    result = visualize_channel(vgg, layer, channel, size=SIZE, steps=STEPS, lr=SHORT_RUN_LR, seed=0)
    image = result.images
    assert image.shape == (1, SIZE, SIZE, 3) and 0 <= image.min() and image.max() <= 1
    with torch.no_grad():
        measured = float(vgg.features(image.permute(0, 3, 1, 2), [layer])[layer][0, channel].mean())
    assert measured == pytest.approx(result.activations[0], rel=1e-4)
    ratio = measured / on_photo
    # measured (48 px, 32 steps): relu1_2 10.8x, relu2_2 11.6x, relu3_2 12.4x, relu4_2 28x, relu5_2 92x
    assert ratio >= MIN_RATIO, f"{layer} channel {channel}: {measured:.2f} vs photo {on_photo:.2f}"
    share, photo_share = float(high_frequency_share(image)), float(high_frequency_share(photo))
    noise_share = float(high_frequency_share(torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))))
    print(f"{layer} ch {channel}: ratio {ratio:.1f}, HF share {share:.3f} (photo {photo_share:.3f}, "
          f"noise {noise_share:.3f})")
    assert share <= MAX_HF_FACTOR * photo_share < noise_share


def test_a_batch_of_channels_each_excites_its_own(vgg):
    channels = [3, 17]
    result = visualize_channel(vgg, "relu2_1", channels, size=32, steps=16, lr=SHORT_RUN_LR, seed=1)
    assert result.images.shape == (2, 32, 32, 3) and result.channels == channels
    with torch.no_grad():
        feats = vgg.features(result.images.permute(0, 3, 1, 2), ["relu2_1"])["relu2_1"]
    own = feats[[0, 1], channels].mean(dim=(1, 2))
    other = feats[[0, 1], channels[::-1]].mean(dim=(1, 2))
    assert (own > 2 * other).all(), (own, other)


def test_progress_callback_sees_steps_and_can_stop(vgg):
    seen = []

    def callback(progress):
        seen.append((progress.step, progress.total, tuple(progress.image.shape)))
        if progress.step == 3:
            progress.stop()

    result = visualize_channel(vgg, "conv1_1", 5, size=32, steps=10, callback=callback)
    assert seen == [(1, 10, (1, 32, 32, 3)), (2, 10, (1, 32, 32, 3)), (3, 10, (1, 32, 32, 3))]
    assert result.stopped == "callback" and len(result.history) == 3


def test_bad_input_names_the_problem(vgg):
    with pytest.raises(nst_core.LayerError, match="channel 64 out of range for conv1_1"):
        visualize_channel(vgg, "conv1_1", 64, size=32, steps=1)
    with pytest.raises(nst_core.LayerError, match="conv9_1"):
        visualize_channel(vgg, "conv9_1", 0, size=32, steps=1)
    with pytest.raises(ValueError, match="size must be between"):
        visualize_channel(vgg, "conv1_1", 0, size=8, steps=1)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        visualize_channel(vgg, "conv1_1", 0, size=32, steps=0)
    with pytest.raises(ValueError, match="one layer per channel"):
        visualize_channel(vgg, ["conv1_1", "conv2_1"], [0, 1, 2], size=32, steps=1)
