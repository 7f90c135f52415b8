"""L-BFGS with one read from the device per step: torch.optim.LBFGS's update, for GPUs.

torch.optim.LBFGS (one iteration per step, no line search, as the loop runs it) computes its direction
with the two-loop recursion, whose `q.add_(y_i, alpha=-al_i)` with a tensor alpha reads back from the
device: on a GPU 2m host reads per step (m pairs), each waiting for the device to drain, so the optimizer
costs more than the loss and gradient (nst_core/bench/README.md).

Every scalar of the two-loop recursion is a combination of dot products among g, the s_i and the y_i
("vector-free L-BFGS", Chen, Wang and Zhou, NIPS 2014). With the pairs oldest first, ρ_i = 1/(y_i·s_i)
and γ = H_diag = (s·y)/(y·y) of the newest pair:

    al_i = ρ_i (−s_i·g − Σ_{j>i} al_j s_i·y_j)                     (i = k−1 … 0)
    be_i = ρ_i (γ y_i·q + Σ_{j<i} (al_j − be_j) y_i·s_j),   y_i·q = −y_i·g − Σ_j al_j y_i·y_j   (i = 0 … k−1)
    d    = −γ g + Σ_i (al_i − be_i) s_i − γ Σ_i al_i y_i

So a step computes the dot products of [g, s_new, y_new] with the stored pairs on the device (the pairs in
chunks of CHUNK rows), reads those m x 6 numbers and the loss back in ONE transfer, runs the two short
recurrences on the host in float64, and forms d with one matrix-vector product per chunk. The pairs, the
acceptance rule (s·y > 1e-10), the first step's length and the quirks are torch's, so the iterates are
torch's up to float rounding (tests/engine/test_lbfgs.py).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

CHUNK = 16               # pairs per device buffer: memory grows with the pairs held, never past history_size


@contextlib.contextmanager
def _full_precision_matmul():
    """Dot products of ~1e6 terms in float32, not TF32 (a host may have turned TF32 matmuls on)."""
    flag = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = flag


class VectorFreeLBFGS:
    """torch.optim.LBFGS(params, lr, max_iter=1, history_size, tolerance_grad, tolerance_change) for one
    tensor, with one device-to-host read per step (the module docstring says how).

    `step(closure)`: the closure zeroes the gradient, evaluates the loss, calls backward and returns the
    loss; the parameter is then moved along the L-BFGS direction. `zero_grad(set_to_none=True)` as
    torch.optim's."""

    def __init__(self, params, lr: float = 1.0, history_size: int = 100, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9):
        params = list(params)
        if len(params) != 1:
            raise ValueError(f"VectorFreeLBFGS optimizes one tensor, got {len(params)}")
        self.x = params[0]
        self.lr, self.history_size = float(lr), max(1, int(history_size))
        self.tolerance_grad, self.tolerance_change = float(tolerance_grad), float(tolerance_change)
        self.n = self.x.numel()
        self.s_chunks: list[torch.Tensor] = []          # device rows: pair slot -> s; slots fill in order
        self.y_chunks: list[torch.Tensor] = []
        self.order: list[int] = []                      # slots, oldest pair first
        m = self.history_size
        self.sy = np.zeros((m, m))                      # sy[i, j] = s_i . y_j (by slot)
        self.yy = np.zeros((m, m))                      # yy[i, j] = y_i . y_j
        self.d: torch.Tensor | None = None              # the last direction and step length
        self.t = 0.0
        self.prev_grad: torch.Tensor | None = None
        self.h_diag = 1.0
        self.n_iter = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self.x.grad is not None:
            if set_to_none:
                self.x.grad = None
            else:
                self.x.grad.zero_()

    # ------------------------------------------------------------------------------------ device side
    def _slots(self) -> int:
        return sum(chunk.shape[0] for chunk in self.s_chunks)

    def _new_slot(self) -> int:
        """A slot for a new pair: a free one (adding a chunk when needed), or the oldest pair's."""
        if len(self.order) < self.history_size:
            slot = len(self.order)
            if slot >= self._slots():
                rows = min(CHUNK, self.history_size - self._slots())
                self.s_chunks.append(self.x.new_empty((rows, self.n)))
                self.y_chunks.append(self.x.new_empty((rows, self.n)))
            return slot
        return self.order.pop(0)

    def _row(self, chunks, slot: int) -> torch.Tensor:
        for chunk in chunks:
            if slot < chunk.shape[0]:
                return chunk[slot]
            slot -= chunk.shape[0]
        raise IndexError(slot)

    def _filled(self):
        """(first slot, S rows, Y rows) of each chunk's filled slots (filled slots are 0 .. k-1)."""
        seen, filled = 0, len(self.order)
        for s_chunk, y_chunk in zip(self.s_chunks, self.y_chunks):
            rows = min(s_chunk.shape[0], filled - seen)
            if rows <= 0:
                return
            yield seen, s_chunk[:rows], y_chunk[:rows]
            seen += rows

    def _products(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S @ vectorsᵀ, Y @ vectorsᵀ) over the filled slots, [k, 3] each (k = pairs held)."""
        empty = vectors.new_zeros((0, vectors.shape[0]))
        chunks = list(self._filled())
        return (torch.cat([empty] + [s @ vectors.T for _, s, _ in chunks]),
                torch.cat([empty] + [y @ vectors.T for _, _, y in chunks]))

    # -------------------------------------------------------------------------------------- the step
    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            orig_loss = closure()
        grad = self.x.grad
        g = grad.reshape(-1) if grad is not None else self.x.new_zeros(self.n)
        self.n_iter += 1
        first = self.n_iter == 1
        with _full_precision_matmul():
            if first:
                vectors = g.unsqueeze(0)
            else:
                y = g - self.prev_grad
                s = self.d * self.t
                vectors = torch.stack([g, s, y])
            ps, py = self._products(vectors)
            gram = vectors @ vectors.T
            head = torch.stack([orig_loss.detach().to(torch.float64).reshape(()),
                                g.abs().max().to(torch.float64), g.abs().sum().to(torch.float64)])
            # the one read from the device this step
            host = torch.cat([head, gram.reshape(-1).to(torch.float64), ps.reshape(-1).to(torch.float64),
                              py.reshape(-1).to(torch.float64)]).cpu().numpy()
        width, k_old = vectors.shape[0], len(self.order)
        scalars, gram_h, ps_h, py_h = np.split(host, np.cumsum([3, width * width, k_old * width]))
        gram_h, ps_h, py_h = gram_h.reshape(width, width), ps_h.reshape(k_old, width), py_h.reshape(k_old, width)
        grad_max, grad_l1 = scalars[1], scalars[2]
        if grad_max <= self.tolerance_grad:
            return orig_loss

        old_slots = list(self.order)
        # rows of the products are slots (filled slots are 0 .. k-1), not the pairs' age
        a = {slot: ps_h[slot, 0] for slot in old_slots}        # s_i . g
        b = {slot: py_h[slot, 0] for slot in old_slots}        # y_i . g
        gg = gram_h[0, 0]
        if not first:
            ys = gram_h[1, 2]
            if ys > 1e-10:
                slot = self._new_slot()
                self._row(self.s_chunks, slot).copy_(s)
                self._row(self.y_chunks, slot).copy_(y)
                for old in old_slots:
                    if old == slot:                       # the evicted pair
                        continue
                    self.sy[slot, old] = py_h[old, 1]       # s_new . y_old
                    self.sy[old, slot] = ps_h[old, 2]       # s_old . y_new
                    self.yy[slot, old] = self.yy[old, slot] = py_h[old, 2]
                self.sy[slot, slot], self.yy[slot, slot] = ys, gram_h[2, 2]
                a[slot], b[slot] = gram_h[0, 1], gram_h[0, 2]
                self.order.append(slot)
                self.h_diag = ys / gram_h[2, 2]

        if self.prev_grad is None:
            self.prev_grad = g.clone()
        else:
            self.prev_grad.copy_(g)
        if first:
            self.d = -g
            self.t = min(1.0, 1.0 / grad_l1) * self.lr
            gtd = -gg
        else:
            cs, cy, gtd = self._coefficients(a, b, gg)
            self.d = self._direction(g, cs, cy)
            self.t = self.lr
        if gtd > -self.tolerance_change:            # not a descent direction: torch does not move either
            return orig_loss
        self.x.add_(self.d.view_as(self.x), alpha=self.t)
        return orig_loss

    def _coefficients(self, a: dict, b: dict, gg: float) -> tuple[np.ndarray, np.ndarray, float]:
        """The recursion's scalars from dot products (module docstring): the coefficients of the s_i and
        of the y_i (pairs oldest first) and g·d."""
        gamma = self.h_diag
        k = len(self.order)
        if k == 0:
            return np.zeros(0), np.zeros(0), -gamma * gg
        idx = np.array(self.order)
        sy = self.sy[np.ix_(idx, idx)]
        yy = self.yy[np.ix_(idx, idx)]
        rho = 1.0 / np.diag(sy)
        av = np.array([a[slot] for slot in self.order])
        bv = np.array([b[slot] for slot in self.order])
        al = np.zeros(k)
        for i in range(k - 1, -1, -1):
            al[i] = rho[i] * (-av[i] - sy[i, i + 1:] @ al[i + 1:])
        yq = -bv - yy @ al
        be = np.zeros(k)
        for i in range(k):
            be[i] = rho[i] * (gamma * yq[i] + (al[:i] - be[:i]) @ sy[:i, i])
        cs, cy = al - be, -gamma * al
        return cs, cy, float(-gamma * gg + cs @ av + cy @ bv)

    def _direction(self, g: torch.Tensor, cs: np.ndarray, cy: np.ndarray) -> torch.Tensor:
        """d = −γ g + Σ cs_i s_i + Σ cy_i y_i, one matrix-vector product per chunk."""
        slots = self._slots()
        by_slot = np.zeros((2, slots))
        by_slot[0, self.order] = cs
        by_slot[1, self.order] = cy
        coefficients = torch.from_numpy(by_slot).to(device=g.device, dtype=g.dtype)
        d = g * (-self.h_diag)
        with _full_precision_matmul():
            for seen, s_rows, y_rows in self._filled():
                d.addmv_(s_rows.T, coefficients[0, seen:seen + s_rows.shape[0]])
                d.addmv_(y_rows.T, coefficients[1, seen:seen + y_rows.shape[0]])
        return d
