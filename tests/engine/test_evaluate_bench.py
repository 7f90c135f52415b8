"""The evaluation bench (nst_core.bench.evaluate): its pairs resolve, its figures mean what they say."""

import pytest
import torch

import nst_core
from nst_core.bench import evaluate


def test_every_pair_of_both_halves_resolves_and_the_halves_share_no_painting():
    for half in evaluate.SETS.values():
        for pair in half:
            photo, painting = evaluate.pair_paths(pair)
            assert photo.is_file() and painting.is_file()
    paintings = {name: {pair.split("+")[1] for pair in half} for name, half in evaluate.SETS.items()}
    assert not paintings["calibration"] & paintings["held_out"]


def test_a_bad_pair_names_the_option():
    with pytest.raises(SystemExit, match="--pairs: 'camera' is not photo\\+painting"):
        evaluate.pair_paths("camera")
    with pytest.raises(SystemExit, match="--pairs: style image 'nowhere'"):
        evaluate.pair_paths("camera+nowhere")


def test_the_photo_scores_one_and_the_painting_less(vgg):
    photo, painting = (nst_core.image.fit_image(image, 64) for image in evaluate.pair_images("camera+wave"))
    itself = evaluate.scores(vgg, photo, photo, painting)
    assert itself["style_gram"] == pytest.approx(1.0) and itself["style_w2"] == pytest.approx(1.0)
    assert itself["content_distance"] == pytest.approx(0.0, abs=1e-6)
    seen = nst_core.image.resize(nst_core.image.to_nchw(painting), tuple(photo.shape[1:3]))
    other = evaluate.scores(vgg, photo, seen.permute(0, 2, 3, 1), painting)
    assert other["style_gram"] < 0.2 and other["content_distance"] > 0.5


def test_a_recolouring_alone_counts_as_styled_against_the_photo_but_not_beyond_colour(vgg):
    """The gray camera under the Wave: its colour transfer closes much of the distance to the painting, so
    the ratios against the photo read it as styled; beyond colour it is where it started (1)."""
    from nst_core.color import match_color_histogram
    from nst_core.image import to_nchw
    photo, painting = (nst_core.image.fit_image(image, 64) for image in evaluate.pair_images("camera+wave"))
    recoloured = match_color_histogram(to_nchw(photo), to_nchw(painting)).permute(0, 2, 3, 1)
    row = evaluate.scores(vgg, photo, recoloured, painting)
    assert row["style_gram"] < 0.8 and row["style_w2"] < 0.8
    assert row["style_gram_beyond_colour"] == pytest.approx(1.0) and row["style_w2_beyond_colour"] == pytest.approx(1.0)
    itself = evaluate.scores(vgg, photo, photo, painting)
    assert itself["style_w2_beyond_colour"] > 1.2


def test_saved_results_are_scored_without_a_run(vgg, tmp_path, capsys):
    """--score reads <pair>_<size>*.png (the peer's files) and scores them as a run's result."""
    photo, _ = evaluate.pair_images("camera+wave")
    nst_core.to_pil(nst_core.image.fit_image(photo, 48)).save(tmp_path / "camera+wave_48px_peer.png")
    rows = evaluate.main(["--score", str(tmp_path), "--pairs", "camera+wave,coins+water_lilies", "--sizes", "48"])
    assert [row["pair"] for row in rows] == ["camera+wave"] and rows[0]["style_gram"] == pytest.approx(1.0, rel=0.01)
    assert "coins+water_lilies 48 px: nothing saved" in capsys.readouterr().out


def test_a_view_scores_style_and_content_seen_smaller_and_grain_at_full_size(vgg):
    photo, painting = (nst_core.image.fit_image(image, 96) for image in evaluate.pair_images("rocket+udnie"))
    noisy = (photo + 0.1 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    seen = evaluate.scores(vgg, photo, noisy, painting, view=48)
    small = evaluate.scores(vgg, photo, nst_core.image.fit_image(noisy, 48), painting)
    full = evaluate.scores(vgg, photo, noisy, painting)
    for key in ("style_gram", "style_w2", "content_distance"):
        assert seen[key] == pytest.approx(small[key]) and seen[key] != pytest.approx(full[key])
    assert seen["grain"] == pytest.approx(full["grain"])


def test_a_run_reports_its_photo_distance_per_style_layer(vgg):
    """The row of a run carries d_l, the photo's distance to the painting per style layer, measured at the
    look size whatever the output's size (the figure the Gram ratio depends on)."""
    from nst_core import photo_distance
    row = evaluate.run_pair(vgg, "camera+wave", 32, steps=2, look_size=64)
    photo, painting = evaluate.pair_images("camera+wave")
    content = nst_core.ContentTarget(vgg, nst_core.image.fit_image(photo, 32, upscale=True))
    style = nst_core.StyleTarget(vgg, painting, list(nst_core.DEFAULT_STYLE_LAYERS), None, 1.0)
    expected = photo_distance.style_distance(vgg, content, style, 64)
    assert row["photo_distance"] == pytest.approx(list(expected), rel=1e-4)
    assert len(set(round(d, 3) for d in expected)) == len(expected)      # one d per layer, not one for all
