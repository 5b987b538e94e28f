"""Fixtures for the device tests: ``fake_gpu`` (always) and ``real_gpu`` (CuPy + CUDA)."""

from __future__ import annotations

import pytest

from rnnlab import backend


@pytest.fixture
def fake_gpu(monkeypatch):
    """Route device="gpu" to the strict CPU stand-in for CuPy (tests/gpu/fakegpu.py)."""
    from gpu.fakegpu import cupy_fake

    monkeypatch.setattr(backend, "_import_cupy", lambda: cupy_fake)
    return cupy_fake


@pytest.fixture
def real_gpu():
    if not backend.gpu_available():
        pytest.skip("needs CuPy and a CUDA device (pip install 'rnnlab[gpu]')")
    import cupy

    return cupy
