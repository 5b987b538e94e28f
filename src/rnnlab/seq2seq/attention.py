"""Attention over encoder states: dot-product, Luong's "general", Bahdanau's additive.

Queries ``q`` ``(N, U, Dq)`` (decoder states), keys = values ``k`` ``(N, S, Dk)``
(encoder states), an optional ``mask`` ``(N, S)`` (True on real source positions)::

    dot        e_us = q_u . k_s                                  (Dq == Dk)
    general    e_us = q_u . (W k_s)                 W (Dq, Dk)   ``weight``
    additive   e_us = v . tanh(W_q q_u + W_k k_s + b)           ``weight_query`` (A, Dq),
                                                                 ``weight_key`` (A, Dk),
                                                                 ``bias`` (A,), ``v`` (A,)
    a_us = softmax_s(e_us)   (masked positions get weight 0)
    c_u  = sum_s a_us k_s    context (N, U, Dk)

The key side (``W k``, ``W_k k + b``) does not depend on the query, so it is computed
once per source by :meth:`Attention.prepare` into a :class:`Memory`; :meth:`attend` can
then be called for all decoder steps at once or one step at a time (the Bahdanau
decoder, beam search). Backward mirrors that: :meth:`attend_backward` for each call (in
any order), then :meth:`prepare_backward` once, which returns ``dk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.backend import make_rng
from rnnlab.nn import Module
from rnnlab.nn.checks import check_float_array, check_positive_int
from rnnlab.nn.init import uniform_init
from rnnlab.nn.module import require_cache

SCORES = ("dot", "general", "additive")


@dataclass
class Memory:
    """Encoder states prepared for attention (all arrays batch-first).

    ``keys`` ``(N, S, Dk)``; ``proj`` the key projection (``keys`` itself for ``dot``,
    ``(N, S, Dq)`` for ``general``, ``(N, S, A)`` for ``additive``); ``mask`` ``(N, S)``
    bool or None. ``dkeys``/``dproj`` accumulate gradients during backward.
    """

    keys: Any
    proj: Any
    mask: Any = None
    dkeys: Any = None
    dproj: Any = None

    def take(self, index: Any) -> Memory:
        """The rows ``index`` (beam search reorders and repeats batch rows)."""
        return Memory(self.keys[index], self.proj[index],
                      None if self.mask is None else self.mask[index])


class Attention(Module):
    """Scores, softmax and context for one of :data:`SCORES`.

    Parameters
    ----------
    query_size, key_size : int
        ``Dq`` and ``Dk`` (equal for ``"dot"``).
    score : {"dot", "general", "additive"}
    attn_size : int, optional
        ``A`` of the additive score (default ``key_size``).
    rng, device, dtype :
        As for every layer; weights are uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``.

    After :meth:`forward` (or :meth:`attend`), ``weights`` holds ``a`` ``(N, U, S)``.
    """

    def __init__(self, query_size: int, key_size: int, score: str = "dot",
                 attn_size: int | None = None, *, rng: Any = None, device: str | None = None,
                 dtype: Any = None) -> None:
        super().__init__(device=device, dtype=dtype)
        self.query_size = check_positive_int(query_size, self.name, "query_size")
        self.key_size = check_positive_int(key_size, self.name, "key_size")
        if score not in SCORES:
            raise ValueError(f"{self.name}: score expected one of {SCORES}, got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(f"{self.name}: score 'dot' expected query_size == key_size, got "
                             f"{query_size} and {key_size}")
        self.score = score
        rng = make_rng(rng)
        Dq, Dk, xp, dt = self.query_size, self.key_size, self.xp, self.dtype
        if score == "general":
            self.add_param("weight", uniform_init(rng, (Dq, Dk), Dk ** -0.5, dt, xp))
        elif score == "additive":
            A = check_positive_int(Dk if attn_size is None else attn_size, self.name,
                                   "attn_size")
            self.attn_size = A
            self.add_param("weight_query", uniform_init(rng, (A, Dq), Dq ** -0.5, dt, xp))
            self.add_param("weight_key", uniform_init(rng, (A, Dk), Dk ** -0.5, dt, xp))
            self.add_param("bias", uniform_init(rng, (A,), Dk ** -0.5, dt, xp))
            self.add_param("v", uniform_init(rng, (A,), A ** -0.5, dt, xp))
        self.weights: Any = None
        self._memory: Memory | None = None
        self._cache: Any = None

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, score={self.score!r}"

    # --------------------------------------------------------------- memory side
    def prepare(self, keys: Any, mask: Any = None) -> Memory:
        """Project the keys ``(N, S, Dk)`` once; ``mask`` ``(N, S)`` bool or None."""
        check_float_array(keys, f"{self.name}.prepare", "keys", xp=self.xp, dtype=self.dtype,
                          ndims=(3,), last=self.key_size)
        if mask is not None and tuple(mask.shape) != tuple(keys.shape[:2]):
            raise ValueError(f"{self.name}.prepare: mask expected shape "
                             f"{tuple(keys.shape[:2])}, got {tuple(mask.shape)}")
        if self.score == "dot":
            proj = keys
        elif self.score == "general":
            proj = keys @ self.params["weight"].T  # eq: attn.general_key
        else:
            proj = keys @ self.params["weight_key"].T + self.params["bias"]  # eq: attn.additive_key
        return Memory(keys, proj, mask)

    def prepare_backward(self, memory: Memory) -> Any:
        """Gradient of the keys after every :meth:`attend_backward` on ``memory``."""
        xp = self.xp
        dkeys = memory.dkeys if memory.dkeys is not None else xp.zeros_like(memory.keys)
        dproj = memory.dproj
        if dproj is not None:
            if self.score == "dot":
                dkeys = dkeys + dproj
            else:
                name = "weight" if self.score == "general" else "weight_key"
                W = self.params[name]
                flat_dp = dproj.reshape(-1, dproj.shape[-1])
                self.grads[name] += flat_dp.T @ memory.keys.reshape(-1, self.key_size)
                if self.score == "additive":
                    self.grads["bias"] += flat_dp.sum(axis=0)
                dkeys = dkeys + dproj @ W
        memory.dkeys = memory.dproj = None
        return dkeys

    # ---------------------------------------------------------------- query side
    def attend(self, q: Any, memory: Memory) -> tuple[Any, Any, Any]:
        """Context ``(N, U, Dk)``, weights ``(N, U, S)`` and a cache for the queries ``q``."""
        xp = self.xp
        check_float_array(q, f"{self.name}.attend", "q", xp=xp, dtype=self.dtype, ndims=(3,),
                          last=self.query_size)
        if q.shape[0] != memory.keys.shape[0]:
            raise ValueError(f"{self.name}.attend: q expected batch size "
                             f"{memory.keys.shape[0]} (the memory's), got {q.shape[0]}")
        tanh = None
        if self.score == "additive":
            qp = q @ self.params["weight_query"].T  # (N, U, A)
            tanh = xp.tanh(qp[:, :, None, :] + memory.proj[:, None, :, :])  # eq: attn.additive_tanh
            e = tanh @ self.params["v"]  # eq: attn.additive
        else:
            e = q @ memory.proj.transpose(0, 2, 1)  # (N, U, S)  # eq: attn.score
        if memory.mask is not None:
            e = xp.where(memory.mask[:, None, :], e, -np.inf)
        e = e - e.max(axis=-1, keepdims=True)
        a = xp.exp(e)
        a /= a.sum(axis=-1, keepdims=True)  # eq: attn.weights
        ctx = a @ memory.keys  # eq: attn.context
        return ctx, a, (q, a, tanh)

    def attend_backward(self, dctx: Any, cache: Any, memory: Memory) -> Any:
        """``dq`` for the queries of ``cache``; key gradients accumulate in ``memory``."""
        q, a, tanh = cache
        if tuple(dctx.shape) != (*a.shape[:2], self.key_size):
            raise ValueError(f"{self.name}.backward: dctx expected shape "
                             f"{(*a.shape[:2], self.key_size)}, got {tuple(dctx.shape)}")
        da = dctx @ memory.keys.transpose(0, 2, 1)  # (N, U, S)  # eq: attn.da
        dkeys = a.transpose(0, 2, 1) @ dctx  # (N, S, Dk)  # eq: attn.dkeys
        de = a * (da - (da * a).sum(axis=-1, keepdims=True))  # eq: attn.de
        if self.score == "additive":
            v = self.params["v"]
            A = v.shape[0]
            self.grads["v"] += de.reshape(-1) @ tanh.reshape(-1, A)
            dpre = de[..., None] * v * (1 - tanh * tanh)  # (N, U, S, A)  # eq: attn.dpre
            dqp = dpre.sum(axis=2)  # (N, U, A)
            dproj = dpre.sum(axis=1)  # (N, S, A)
            Wq = self.params["weight_query"]
            self.grads["weight_query"] += (dqp.reshape(-1, dqp.shape[-1]).T
                                           @ q.reshape(-1, self.query_size))
            dq = dqp @ Wq
        else:
            dq = de @ memory.proj  # eq: attn.dq
            dproj = de.transpose(0, 2, 1) @ q  # (N, S, Dq)  # eq: attn.dproj
        memory.dkeys = dkeys if memory.dkeys is None else memory.dkeys + dkeys
        memory.dproj = dproj if memory.dproj is None else memory.dproj + dproj
        return dq

    # ------------------------------------------------------------ one-shot form
    def forward(self, q: Any, keys: Any, mask: Any = None) -> Any:
        """Context ``(N, U, Dk)`` of queries ``q`` over ``keys``; sets ``weights``."""
        memory = self.prepare(keys, mask)
        ctx, self.weights, cache = self.attend(q, memory)
        self._memory, self._cache = memory, cache
        return ctx

    def backward(self, dctx: Any) -> tuple[Any, Any]:
        """``(dq, dkeys)`` for the last :meth:`forward`."""
        memory = require_cache(self, self._memory)
        dq = self.attend_backward(dctx, self._cache, memory)
        return dq, self.prepare_backward(memory)


def check_score(score: Any, owner: str) -> str:
    """``score`` if it is one of :data:`SCORES`, else a ``ValueError``."""
    if score not in SCORES:
        raise ValueError(f"{owner}: score expected one of {SCORES}, got {score!r}")
    return score

