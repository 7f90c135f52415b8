"""An objective's loss and pixel gradient replayed from one CUDA graph: the GPU's step without launches.

A small step waits on Python and the kernel launches, not on arithmetic; a CUDA graph records the kernels
once and replays them with one launch. Above GRAPH_MAX_PIXELS the arithmetic sets the pace and a graph's
activations would stay allocated for the level's life, so those levels run eagerly, as does what a graph
cannot hold (`graphable`). A capture that fails or differs from an eager evaluation (GRAPH_CHECK_RTOL)
leaves the level eager, with a warning. The run option `cuda_graphs` turns graphs off.
"""

from __future__ import annotations

import warnings

import torch

from .objective import with_gradient

GRAPH_MAX_PIXELS = 1024 * 1024
GRAPH_WARMUP = 2                   # eager evaluations on a side stream before the capture (cuDNN's choices)
GRAPH_CHECK_RTOL = 1e-3
# the statistics a graph can hold: the others draw random numbers (sliced W) or solve on the host (W2)
GRAPHED_STATISTICS = ("gram",)


def graphable(objective, x: torch.Tensor) -> bool:
    """Whether `objective` at x's size can be replayed from a CUDA graph: on CUDA, up to GRAPH_MAX_PIXELS,
    in float32, with the Gram only and no pixel term but a look term (replayed with its level)."""
    if (x.device.type != "cuda" or x.shape[-2] * x.shape[-1] > GRAPH_MAX_PIXELS
            or getattr(objective, "autocast", None) is not None or not getattr(objective, "layers", ())):
        return False
    # a pixel term holding an objective of its own (look.LookTerm) is replayed with it
    inner = [getattr(term, "objective", None) for term in getattr(objective, "pixel_terms", ())]
    if any(o is None or o.autocast is not None or not o.layers for o in inner):
        return False
    return all(term.statistic is None or term.statistic.name in GRAPHED_STATISTICS
               for o in (objective, *inner) for terms in o.terms.values() for term in terms)


class GraphedObjective:
    """Called like the Objective it wraps: (total, parts), total attached to x with the replayed
    gradient. The graph is captured on the first call that wants a gradient."""

    def __init__(self, objective):
        self.objective = objective
        self.term_names = objective.term_names
        self.layers, self.size, self.vgg = objective.layers, objective.size, objective.vgg
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager = False
        self.note: str | None = None

    def __call__(self, x: torch.Tensor):
        if self.eager or not (x.requires_grad and torch.is_grad_enabled()):
            return self.objective(x)
        if self.graph is None:
            try:
                self._capture(x)
            except Exception as exc:          # noqa: BLE001 - any capture failure: the eager objective is exact
                self.eager, self.graph = True, None
                self.note = f"CUDA graph not used ({type(exc).__name__}: {str(exc)[:200]}); running eagerly"
                warnings.warn(self.note, RuntimeWarning, stacklevel=2)
                return self.objective(x)
        with torch.no_grad():
            self.static_x.copy_(x)
        self.graph.replay()
        total = with_gradient(x, self.static_total, self.static_grad)
        return total, {"total": total, **{name: value.clone() for name, value in self.static_parts.items()}}

    def _capture(self, x: torch.Tensor) -> None:
        device = x.device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            # the warm-up differentiates its own leaf: a leaf's gradient accumulator belongs to the stream
            # of its first use, and static_x's must be the capture's
            warm_x = x.detach().clone().requires_grad_(True)
            for _ in range(GRAPH_WARMUP):
                warm_x.grad = None
                loss, _ = self.objective(warm_x)
                loss.backward()
        torch.cuda.current_stream(device).wait_stream(side)
        eager_loss, eager_grad = loss.detach().clone(), warm_x.grad.detach().clone()
        del warm_x, loss
        static_x = x.detach().clone().requires_grad_(True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss, parts = self.objective(static_x)
            loss.backward()
        graph.replay()
        grad = static_x.grad
        loss_error = float((loss.detach() - eager_loss).abs() / eager_loss.abs().clamp_min(1e-30))
        grad_error = float((grad - eager_grad).norm() / eager_grad.norm().clamp_min(1e-30))
        if not (loss_error <= GRAPH_CHECK_RTOL and grad_error <= GRAPH_CHECK_RTOL):
            raise RuntimeError(f"the replay differs from the eager evaluation (loss {loss_error:.2g}, "
                               f"gradient {grad_error:.2g} relative)")
        self.static_x, self.static_grad, self.static_total = static_x, grad, loss.detach()
        self.static_parts = {name: value.detach() for name, value in parts.items() if name != "total"}
        self.graph = graph
