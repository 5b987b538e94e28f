"""Shared fixtures for the optimizer tests: a noisy quadratic with a fixed gradient
sequence, so that two runs (ours and PyTorch's, or a resumed one) see the same data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

SHAPES = [(3, 4), (5,), (2, 3, 2)]


class Quadratic:
    """``f(θ) = Σ a (θ − c)² / 2`` per parameter; ``grad(t) = a (θ − c) + noise·n_t``."""

    def __init__(self, seed: int = 0, dtype: Any = np.float64, noise: float = 0.3,
                 shapes: list[tuple[int, ...]] = SHAPES) -> None:
        rng = np.random.default_rng(seed)
        self.seed, self.dtype, self.noise, self.shapes = seed, np.dtype(dtype), noise, shapes
        self.start = [rng.standard_normal(s).astype(dtype) for s in shapes]
        self.a = [rng.uniform(0.5, 2.0, s).astype(dtype) for s in shapes]
        self.c = [rng.standard_normal(s).astype(dtype) for s in shapes]

    def triples(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Fresh ``(name, param, grad)`` triples at the starting point."""
        return [(f"p{i}", p.copy(), np.zeros_like(p)) for i, p in enumerate(self.start)]

    def noise_at(self, t: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, t])
        return [(self.noise * rng.standard_normal(s)).astype(self.dtype) for s in self.shapes]

    def fill(self, triples: list[tuple[str, Any, Any]], t: int) -> None:
        """Write the step-``t`` gradients into the grad arrays, in place."""
        for (_, p, g), a, c, n in zip(triples, self.a, self.c, self.noise_at(t), strict=True):
            np.subtract(p, c, out=g)
            g *= a
            g += n

    def distance(self, triples: list[tuple[str, Any, Any]]) -> float:
        return max(float(np.abs(p - c).max()) for (_, p, _), c in zip(triples, self.c,
                                                                      strict=True))


@pytest.fixture
def quadratic() -> type[Quadratic]:
    return Quadratic
