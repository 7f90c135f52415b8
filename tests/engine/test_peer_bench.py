"""nst_core.bench.peer: the engine's VGG-19 in torchvision's layout computes the engine's features, and
the peer (crowsonkb/style-transfer-pytorch, not part of the project) runs on it offline."""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch

import nst_core
from nst_core.bench import evaluate, peer
from nst_core.image import fit_image
from nst_core.vgg import TORCHVISION_MEAN, TORCHVISION_STD

CHECKED = ("relu1_1", "relu4_1", "relu5_1")


def torchvision_input(x: torch.Tensor) -> torch.Tensor:
    """What the peer feeds torchvision's VGG: RGB 0..1 normalized by the ImageNet mean and std."""
    return (x - torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1)) / torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)


def sequential_features(features, x: torch.Tensor, positions: dict[str, int]) -> dict[str, torch.Tensor]:
    out = {}
    for index, module in enumerate(features[:max(positions.values()) + 1]):
        x = module(x)
        for name, position in positions.items():
            if position == index:
                out[name] = x.clone()
    return out


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max())


@pytest.mark.parametrize("normalized", [True, False], ids=["normalized", "raw"])
def test_converted_network_computes_the_engines_features(normalized):
    """With the padding of conv1_1 out of play (valid conv in both), the folded preprocessing makes every
    layer equal; with it, only the border's mean pixel differs (Caffe's vs ImageNet's) and relu4_1 of a
    32 px image stays within 0.5%."""
    vgg = nst_core.load_vgg(normalized=normalized, device="cpu")
    features = peer.torchvision_features(vgg)
    positions = {name: vgg.table[name].position for name in CHECKED}
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        padded_ours = vgg.features(x, CHECKED)
        padded_theirs = sequential_features(features, torchvision_input(x), positions)
        valid = copy.deepcopy(vgg)
        valid.convs[0].padding = (0, 0)
        features[0].padding = (0, 0)
        valid_ours = valid.features(x, CHECKED)
        valid_theirs = sequential_features(features, torchvision_input(x), positions)
    for name in CHECKED:
        assert relative_error(valid_ours[name], valid_theirs[name]) < 1e-5, name
    assert relative_error(padded_ours["relu4_1"], padded_theirs["relu4_1"]) < 5e-3


def test_converted_network_has_torchvisions_layout():
    """The peer slices and indexes torchvision's vgg19().features: same modules and state-dict keys."""
    vgg_module = pytest.importorskip("torchvision.models.vgg", reason="torchvision (the `peer` extra) not installed")
    reference = vgg_module.make_layers(vgg_module.cfgs["E"])
    features = peer.torchvision_features(nst_core.load_vgg(device="cpu"))
    assert [type(m) for m in features] == [type(m) for m in reference]
    assert {k: v.shape for k, v in features.state_dict().items()} == \
           {k: v.shape for k, v in reference.state_dict().items()}


def test_missing_peer_checkout_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(peer.PEER_ENV, raising=False)
    with pytest.raises(SystemExit, match="--peer-dir: give the path"):
        peer.main(["--pairs", "chelsea+starry_night"])
    with pytest.raises(SystemExit, match="has no style_transfer/style_transfer.py"):
        peer.main(["--peer-dir", str(tmp_path), "--pairs", "chelsea+starry_night"])


@pytest.mark.skipif(not os.environ.get(peer.PEER_ENV),
                    reason=f"set {peer.PEER_ENV} to a checkout of {peer.PEER_URL} to run the peer")
def test_peer_runs_offline_on_the_converted_network(tmp_path, monkeypatch):
    """Two iterations at 64 px through the command; torchvision's own VGG-19 (a download) is never built."""
    pytest.importorskip("torchvision", reason="torchvision (the `peer` extra) not installed")
    import torchvision.models

    def no_download(*args, **kwargs):
        raise AssertionError("the peer asked torchvision for its VGG-19")
    monkeypatch.setattr(torchvision.models, "vgg19", no_download)
    content, style = evaluate.pair_paths("chelsea+starry_night")
    output, report = tmp_path / "out.png", tmp_path / "peer.json"
    peer.main(["--content", str(content), "--style", str(style), "--output", str(output), "--sizes", "64",
               "--initial-iterations", "2", "--threads", "1", "--device", "cpu", "--json", str(report)])
    result = nst_core.load_image(output)
    assert max(result.shape[1:3]) == 64
    photo = fit_image(nst_core.load_image(content), 64)
    assert result.shape == photo.shape and float((result - photo).abs().mean()) > 1e-3
    run = json.loads(report.read_text())["runs"][0]
    assert run["steps"] == 2 and run["arguments"]["content_weight"] == 0.015 and run["arguments"]["end_scale"] == 64
