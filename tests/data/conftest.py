"""Fixtures for the rnnlab.data tests: no network, an isolated cache, the shared datasets.

The shared copies of Penn Treebank and tiny-shakespeare are looked for in the folders of
``$RNNLAB_DATA`` (read once, when this file is imported), then in ``shared/data`` next
to any parent folder of this file (``/work/shared/data`` for a checkout at
``/work/main``, ``<repo>/shared/data`` for a copy that carries it). Tests that need them
skip with the list of places searched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_ENV_DATA = os.environ.get("RNNLAB_DATA", "")


def _candidates() -> list[Path]:
    found = [Path(p).expanduser() for p in _ENV_DATA.split(os.pathsep) if p]
    found += [parent / "shared" / "data" for parent in Path(__file__).resolve().parents]
    return found


def _find(*relative: str) -> Path | None:
    for base in _candidates():
        if all((base / r).is_file() for r in relative):
            return base
    return None


def _skip_reason(what: str, *relative: str) -> str:
    places = ", ".join(str(p) for p in _candidates())
    return (f"{what} not found: set RNNLAB_DATA to a folder holding {', '.join(relative)} "
            f"(looked in: {places})")


PTB_RELATIVE = ("ptb/ptb.train.txt", "ptb/ptb.valid.txt", "ptb/ptb.test.txt")
SHAKESPEARE_RELATIVE = ("tinyshakespeare/input.txt",)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reaches the network or the user's cache, nor sees the caller's RNNLAB_DATA."""
    import pooch

    def no_network(url: str, *args: object, **kwargs: object) -> str:
        raise ConnectionError(f"network disabled in tests (asked for {url})")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("RNNLAB_DATA", raising=False)


@pytest.fixture(scope="session")
def ptb_dir() -> Path:
    """A folder with ``ptb/ptb.{train,valid,test}.txt`` (skips when there is none)."""
    found = _find(*PTB_RELATIVE)
    if found is None:
        pytest.skip(_skip_reason("Penn Treebank", *PTB_RELATIVE))
    return found


@pytest.fixture(scope="session")
def shakespeare_dir() -> Path:
    """A folder with ``tinyshakespeare/input.txt`` (skips when there is none)."""
    found = _find(*SHAKESPEARE_RELATIVE)
    if found is None:
        pytest.skip(_skip_reason("tiny-shakespeare", *SHAKESPEARE_RELATIVE))
    return found
