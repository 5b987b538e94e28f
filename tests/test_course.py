"""The course's helpers (rnnlab.course), and the link between the source's equation markers
and the tutorials that show them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rnnlab import course

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
USE = re.compile(r"""equation\(\s*["']([A-Za-z0-9_][A-Za-z0-9_.\-]*)["']""")


def _names_used_by_tutorials() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for page in sorted(TUTORIALS.glob("*.md")):
        for name in USE.findall(page.read_text(encoding="utf-8")):
            used.setdefault(name, []).append(page.name)
    return used


def test_every_marker_is_shown_by_a_tutorial() -> None:
    unshown = sorted(set(course.markers()) - set(_names_used_by_tutorials()))
    assert not unshown, f"equation markers no tutorial shows: {unshown}"


def test_every_equation_a_tutorial_names_exists() -> None:
    missing = {n: p for n, p in _names_used_by_tutorials().items() if n not in course.markers()}
    assert not missing, f"tutorials name markers that are not in src/: {missing}"


def test_markers_point_at_their_lines() -> None:
    root = Path(course.__file__).resolve().parent
    for marker in course.markers().values():
        line = (root / marker.path).read_text(encoding="utf-8").splitlines()[marker.line - 1]
        assert line.rstrip().endswith(f"# eq: {marker.name}")
        assert marker.code and marker.code in line


def test_marker_pattern() -> None:
    assert course.MARKER.search("ds = a + b  # eq: lstm.ds").group(1) == "lstm.ds"
    assert course.MARKER.search("x = 1  # eq: lstm.ds`` in prose") is None
    assert course.MARKER.search("x = 1  # see eq. 3") is None


def test_check_passes_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    marker = course.Marker("demo.sum", "rnnlab.demo", "demo.py", 3, "s = a + b")
    eq = course.Equation(marker, r"s = a + b")
    a = np.arange(1.0, 7.0).reshape(2, 3)
    result = eq.check(a, a + 1e-15)
    assert result.max_abs <= 1e-14
    assert "demo.sum" in str(result)
    assert "rnnlab/demo.py" in eq._repr_markdown_()
    assert "#L-3" in eq._repr_markdown_()


def test_check_fails_on_mismatch_and_shape() -> None:
    eq = course.Equation(course.Marker("demo.x", "rnnlab.demo", "demo.py", 1, "x = 1"), "x = 1")
    with pytest.raises(course.EquationMismatch, match=r"demo\.x"):
        eq.check(np.ones(3), np.ones(3) * (1 + 1e-6))
    with pytest.raises(course.EquationMismatch, match="shape"):
        eq.check(np.ones(3), np.ones(4))
    with pytest.raises(course.EquationMismatch):
        eq.check(np.array([np.nan]), np.array([np.nan]))


def test_unknown_equation_lists_the_markers() -> None:
    with pytest.raises(ValueError, match=r"no .# eq: nothing\.here. marker"):
        course.equation("nothing.here", "x")
    with pytest.raises(TypeError):
        course.equation(3, "x")  # type: ignore[arg-type]


def test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RNNLAB_TUTORIAL", raising=False)
    assert course.mode() == "quick"
    monkeypatch.setenv("RNNLAB_TUTORIAL", "full")
    assert course.mode() == "full"
    monkeypatch.setenv("RNNLAB_TUTORIAL", "huge")
    with pytest.raises(ValueError, match="RNNLAB_TUTORIAL"):
        course.mode()


def _png_text(data: bytes) -> dict[str, str]:
    import struct

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, at = {}, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at: at + 8])
        if kind == b"tEXt":
            keyword, text = data[at + 8: at + 8 + length].split(b"\0", 1)
            found[keyword.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return found


def test_gallery_marks_the_png_and_closes_the_figure() -> None:
    import json

    plt = pytest.importorskip("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    shown = course.gallery(fig, "demo-line", "A line — going down")
    assert isinstance(shown, course.GalleryFigure)      # not in a kernel: returned
    assert not plt.fignum_exists(fig.number)            # the inline backend won't show it again
    assert shown._repr_png_() == shown.png
    mark = json.loads(_png_text(shown.png)[course.GALLERY_METADATA])
    assert mark == {"key": "demo-line", "caption": "A line — going down"}


def test_gallery_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="key"):
        course.gallery(object(), "Bad Key", "caption")
    with pytest.raises(ValueError, match="caption"):
        course.gallery(object(), "ok", " ")
    with pytest.raises(TypeError, match="matplotlib Figure"):
        course.gallery(object(), "ok", "caption")


def test_equation_markdown_links_the_source_line() -> None:
    marker = course.Marker("demo.sum", "rnnlab.nn.demo", "nn/demo.py", 7, "s = a + b")
    text = course.Equation(marker, "s = a + b")._repr_markdown_()
    assert text.startswith("$$\ns = a + b\n$$")
    assert 'href="../source/rnnlab.nn.demo.html#L-7"' in text
