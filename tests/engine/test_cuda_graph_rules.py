"""Which levels nst_core.cuda_graph replays from a CUDA graph (the replay itself needs a GPU: it checks
itself against an eager evaluation before use, and was measured on an H200, see README "GPU")."""

from __future__ import annotations

from types import SimpleNamespace

import torch

import nst_core
from nst_core.bench import setup
from nst_core.look import LookTerm
from nst_core.cuda_graph import GRAPH_MAX_PIXELS, graphable
from nst_core.objective import PixelTerm


def pixels(device: str, height: int, width: int):
    """Stands in for a tensor on `device` (only .device and .shape are read)."""
    return SimpleNamespace(device=torch.device(device), shape=(1, 3, height, width))


def test_rules():
    vgg = nst_core.load_vgg(device="cpu")
    _, _, ct, st = setup(vgg, 48)
    gram = nst_core.Objective(vgg, ct, st, 0.0, (48, 48))
    assert not graphable(gram, torch.zeros(1, 3, 48, 48))                 # the CPU: eager
    assert graphable(gram, pixels("cuda", 48, 48))
    side = int(GRAPH_MAX_PIXELS ** 0.5)
    assert graphable(gram, pixels("cuda", side, side))
    assert not graphable(gram, pixels("cuda", side, side + 1))          # arithmetic-bound sizes: eager
    sliced = nst_core.StyleTarget(vgg, st.images, style_loss="sliced_wasserstein")
    assert not graphable(nst_core.Objective(vgg, ct, sliced, 0.0, (48, 48)), pixels("cuda", 48, 48))
    tv_only = nst_core.Objective(vgg, None, None, 1.0, (48, 48))
    assert not graphable(tv_only, pixels("cuda", 48, 48))                # no network: nothing to replay
    assert not graphable(SimpleNamespace(**{**vars(gram), "autocast": torch.bfloat16}), pixels("cuda", 48, 48))


def test_a_look_term_is_replayed_with_its_level_other_pixel_terms_are_not():
    vgg = nst_core.load_vgg(device="cpu")
    _, _, ct, st = setup(vgg, 48)
    look = LookTerm(nst_core.Objective(vgg, ct, st, 0.0, (32, 32)))
    assert graphable(nst_core.Objective(vgg, ct, st, 0.0, (48, 48), pixel_terms=[look]), pixels("cuda", 48, 48))
    sliced = nst_core.StyleTarget(vgg, st.images, style_loss="sliced_wasserstein")
    sliced_look = LookTerm(nst_core.Objective(vgg, ct, sliced, 0.0, (32, 32)))
    assert not graphable(nst_core.Objective(vgg, ct, st, 0.0, (48, 48), pixel_terms=[sliced_look]),
                         pixels("cuda", 48, 48))

    class Temporal(PixelTerm):
        name = "temporal"

        def loss(self, x):
            return x.square().mean()
    assert not graphable(nst_core.Objective(vgg, ct, st, 0.0, (48, 48), pixel_terms=[Temporal()]),
                         pixels("cuda", 48, 48))
