"""The course's helpers: an equation shown beside the line of rnnlab that computes it, and a
check that the two agree.

Every line of the reference that computes an equation carries a marker comment naming it,
for example ``ds = bw.dc_next + dh * o * (1 - tanh_c * tanh_c)  # eq: lstm.ds``. A course
page shows that equation and checks it::

    from rnnlab.course import equation
    eq = equation("lstm.ds", r"\\delta s_t = \\delta c_t + \\delta h_t \\odot o_t \\odot "
                             r"(1 - \\tanh^2 c_t)")
    eq                                   # the equation, the source line and a link to it
    eq.check(mine, library_value)        # raises EquationMismatch when they differ

``markers()`` lists every marker in the package, so a test can prove that each marker is
shown by some page and that each name a page uses exists.

``gallery(fig, key, caption)`` shows a figure made by a page and offers it to the site's
gallery (the build finds the marked PNG among the executed page's outputs).

``mode()`` reads ``RNNLAB_TUTORIAL`` (``quick``, the default, or ``full``): the size a page
runs at.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from rnnlab.backend import to_numpy

__all__ = [
    "Check",
    "Equation",
    "EquationMismatch",
    "GalleryFigure",
    "Marker",
    "equation",
    "gallery",
    "markers",
    "mode",
    "source_url",
]

MARKER = re.compile(r"#\s*eq:\s*([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*$")
MODES = ("quick", "full")
SOURCE_BASE = "../source/"


class EquationMismatch(AssertionError):
    """What a page computed by hand and what rnnlab computed differ beyond the tolerance."""


@dataclass(frozen=True)
class Marker:
    """One ``# eq: NAME`` marker: where it stands and the code it marks.

    ``path`` is relative to the package (``nn/cells/lstm.py``), ``module`` the dotted
    module name (``rnnlab.nn.cells.lstm``), ``line`` 1-based, ``code`` the marked line
    without its marker.
    """

    name: str
    module: str
    path: str
    line: int
    code: str


def _python_files(root: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir() and entry.name != "__pycache__":
            yield from _python_files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".py"):
            yield f"{prefix}{entry.name}", entry


@cache
def markers() -> dict[str, Marker]:
    """Every ``# eq:`` marker in the installed package, by name.

    Raises ``ValueError`` when a name is used twice: each equation is computed in one place.
    """
    found: dict[str, Marker] = {}
    for path, entry in _python_files(resources.files("rnnlab")):
        module = "rnnlab." + path[: -len(".py")].replace("/", ".")
        module = module.removesuffix(".__init__")
        for number, text in enumerate(entry.read_text(encoding="utf-8").splitlines(), 1):
            match = MARKER.search(text)
            if match is None:
                continue
            name = match.group(1)
            if name in found:
                first = found[name]
                raise ValueError(f"equation marker {name!r} appears twice: {first.path} line "
                                 f"{first.line} and {path} line {number}")
            code = text[: match.start()].rstrip()
            found[name] = Marker(name, module, path, number, code.strip())
    return found


def source_url(marker: Marker, base: str = SOURCE_BASE) -> str:
    """The address of the marked line in the site's source pages (``#L-<line>`` anchors)."""
    return f"{base}{marker.module}.html#L-{marker.line}"


def mode() -> str:
    """The size the course's pages run at: ``RNNLAB_TUTORIAL``, ``quick`` (default) or
    ``full``."""
    value = os.environ.get("RNNLAB_TUTORIAL", "quick").strip().lower() or "quick"
    if value not in MODES:
        raise ValueError(f"RNNLAB_TUTORIAL: expected one of {', '.join(MODES)}, got {value!r}")
    return value


def _host(array: Any) -> np.ndarray:
    return np.asarray(to_numpy(array), dtype=np.float64)  # a CuPy array comes to the host


@dataclass(frozen=True)
class Check:
    """The outcome of a passed check: the largest errors and the tolerance they met."""

    name: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    against: str

    def __str__(self) -> str:
        return (f"{self.name}: agrees with {self.against}; largest relative error "
                f"{self.max_rel:.1e}, largest absolute error {self.max_abs:.1e} "
                f"(tolerance rtol {self.rtol:g}, atol {self.atol:g})")

    def _repr_markdown_(self) -> str:
        return f"**checked** — `{self.name}` {str(self)[len(self.name) + 1:]}"


class Equation:
    """An equation of the course and the marked line of rnnlab that computes it."""

    def __init__(self, marker: Marker, latex: str) -> None:
        self.marker = marker
        self.latex = latex.strip()

    @property
    def name(self) -> str:
        return self.marker.name

    def __repr__(self) -> str:
        m = self.marker
        return f"{self.latex}\n  computed at rnnlab/{m.path}:{m.line}: {m.code}"

    def _repr_markdown_(self) -> str:
        m = self.marker
        # an HTML link: the site's source pages are not documents of the build, so a
        # markdown link would be taken for a cross-reference
        return (f"$$\n{self.latex}\n$$\n\ncomputed in <a class=\"rnnlab-source-link\" "
                f"href=\"{source_url(m)}\"><code>rnnlab/{m.path}</code>, line {m.line}</a>:"
                f"\n\n```python\n{m.code}\n```\n")

    def check(self, computed: Any, expected: Any, *, rtol: float = 1e-12, atol: float = 0.0,
              against: str = "rnnlab") -> Check:
        """Compare what a page computed by hand (``computed``) with ``expected``.

        ``expected`` is what rnnlab computed, or a central-difference gradient (say so in
        ``against``). Raises ``EquationMismatch`` naming the equation and the largest error
        when ``|computed - expected| > atol + rtol * |expected|`` anywhere, or when the
        shapes differ.
        """
        a, b = _host(computed), _host(expected)
        if a.shape != b.shape:
            raise EquationMismatch(f"{self.name}: the page's array has shape {a.shape}, "
                                   f"{against}'s has shape {b.shape}")
        diff = np.abs(a - b)
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = np.maximum(np.abs(b), np.finfo(np.float64).tiny)
        max_rel = float((diff / scale).max()) if diff.size else 0.0
        if not np.all(np.isfinite(a)) or not np.all(diff <= atol + rtol * np.abs(b)):
            raise EquationMismatch(f"{self.name}: the page and {against} disagree: largest "
                                   f"absolute error {max_abs:.3e}, largest relative error "
                                   f"{max_rel:.3e} (tolerance rtol {rtol:g}, atol {atol:g})")
        return Check(self.name, max_abs, max_rel, rtol, atol, against)


def equation(name: str, latex: str) -> Equation:
    """The equation ``name`` (a ``# eq:`` marker in rnnlab's source) written as ``latex``."""
    if not isinstance(name, str):
        raise TypeError(f"equation: name expected a str, got {type(name).__name__}")
    if not isinstance(latex, str) or not latex.strip():
        raise ValueError(f"equation: latex expected a non-empty str, got {latex!r}")
    found = markers()
    if name not in found:
        family = name.split(".", 1)[0]
        near = sorted(n for n in found if n.split(".", 1)[0] == family) or sorted(found)
        raise ValueError(f"equation: no '# eq: {name}' marker in rnnlab's source; the markers"
                         f" are {', '.join(near)}")
    return Equation(found[name], latex)


class GalleryFigure:
    """A figure offered to the site's gallery: displays as the PNG it was rendered to.

    The PNG carries its key and caption in a text chunk named ``rnnlab.gallery`` (JSON),
    which the documentation build reads from the executed page to make the gallery page.
    """

    def __init__(self, png: bytes, key: str, caption: str) -> None:
        self.png, self.key, self.caption = png, key, caption

    def __repr__(self) -> str:
        return f"<gallery figure {self.key!r}: {self.caption}>"

    def _repr_png_(self) -> bytes:
        return self.png


#: The PNG text chunk that marks a gallery figure: ``{"key": ..., "caption": ...}``.
GALLERY_METADATA = "rnnlab.gallery"


def gallery(figure: Any, key: str, caption: str, *, dpi: int = 100) -> GalleryFigure | None:
    """Show ``figure`` (a matplotlib figure made by the page) and offer it to the gallery.

    The figure is rendered to PNG and closed (so matplotlib's inline backend does not show
    it a second time). In Jupyter (or the site's build) the PNG is displayed where the call
    stands and ``None`` is returned; elsewhere the :class:`GalleryFigure` is returned. The
    PNG is marked for the site's gallery page, which shows this very figure with
    ``caption`` and a link back to it. ``key`` names it in the gallery (lower-case
    letters, digits and ``-``; unique across the course).
    """
    if not isinstance(key, str) or not re.fullmatch(r"[a-z0-9][a-z0-9\-]*", key):
        raise ValueError(f"gallery: key expected lower-case letters, digits and '-', got {key!r}")
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"gallery: caption expected a non-empty str, got {caption!r}")
    savefig = getattr(figure, "savefig", None)
    if not callable(savefig):
        raise TypeError(f"gallery: figure expected a matplotlib Figure, got "
                        f"{type(figure).__name__}")
    buffer = io.BytesIO()
    mark = json.dumps({"key": key, "caption": caption.strip()})    # ASCII: a tEXt chunk
    savefig(buffer, format="png", dpi=dpi, bbox_inches="tight",
            metadata={GALLERY_METADATA: mark})
    pyplot = sys.modules.get("matplotlib.pyplot")     # the page drew with pyplot
    if pyplot is not None:
        pyplot.close(figure)
    shown = GalleryFigure(buffer.getvalue(), key, caption.strip())
    ipython = sys.modules.get("IPython")              # loaded when this runs in a kernel
    display = getattr(sys.modules.get("IPython.display"), "display", None)
    if ipython is None or display is None or ipython.get_ipython() is None:
        return shown
    display(shown)                                    # shown wherever the call stands
    return None
