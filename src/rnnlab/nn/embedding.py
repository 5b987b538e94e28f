"""``Embedding``: a lookup table from integer ids to vectors (the book's ``TimeEmbedding``).

``forward(ids (N,) or (N, T)) -> (..., D)`` gathers rows of ``weight`` ``(V, D)``;
``backward(dout)`` adds each row of ``dout`` into the gradient row of its id (repeated ids
sum). Initialised from N(0, 1) as in PyTorch; ``padding_idx`` rows start at zero and get
no gradient.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng
from rnnlab.fast import engine_for
from rnnlab.nn.checks import check_positive_int, check_shape, check_token_ids
from rnnlab.nn.init import normal_init
from rnnlab.nn.module import Module, require_cache


def scatter_add_rows(xp: ModuleType, target: Array, ids: Array, rows: Array) -> None:
    """``target[ids[k]] += rows[k]`` for every ``k``, repeated ids summed.

    On the CPU the ids are sorted and the rows of each run of equal ids summed with
    ``add.reduceat`` (``add.at`` is much slower there); on a GPU ``add.at`` is an atomic
    scatter. The engine may do it in one compiled sweep.
    """
    if ids.size == 0:
        return
    if engine_for(xp, target.dtype).scatter_add_rows(target, ids, rows):
        return
    if xp is not np:
        xp.add.at(target, ids, rows)
        return
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    sums = np.add.reduceat(rows[order], starts, axis=0)
    target[sorted_ids[starts]] += sums


class Embedding(Module):
    """Lookup table ``weight`` ``(num_embeddings, embedding_dim)``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 *, rng: RNGLike = None, device: str | None = None, dtype: DTypeLike | None = None,
                 check_finite: bool = False) -> None:
        super().__init__(device=device, dtype=dtype, check_finite=check_finite)
        self.num_embeddings = check_positive_int(num_embeddings, self.name, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, self.name, "embedding_dim")
        if padding_idx is not None:
            padding_idx = int(padding_idx)
            if padding_idx < 0:
                padding_idx += self.num_embeddings
            if not 0 <= padding_idx < self.num_embeddings:
                raise ValueError(f"{self.name}: padding_idx expected in "
                                 f"[0, {self.num_embeddings}), got {padding_idx}")
        self.padding_idx = padding_idx
        rng = make_rng(rng)
        weight = normal_init(rng, (self.num_embeddings, self.embedding_dim), self.dtype, self.xp)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.add_param("weight", weight)
        self._ids: Any = None

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"

    def forward(self, ids: Array) -> Any:
        check_token_ids(ids, f"{self.name}.forward", "ids", num=self.num_embeddings, xp=self.xp)
        self._ids = ids
        return self.params["weight"][ids]

    def backward(self, dout: Array) -> None:
        ids = require_cache(self, self._ids)
        D = self.embedding_dim
        check_shape(dout, f"{self.name}.backward", "dout", (*ids.shape, D), xp=self.xp,
                    dtype=self.dtype)
        flat_ids, rows = ids.reshape(-1), dout.reshape(-1, D)
        if self.padding_idx is not None:
            keep = flat_ids != self.padding_idx
            flat_ids, rows = flat_ids[keep], rows[keep]
        scatter_add_rows(self.xp, self.grads["weight"], flat_ids, rows)
