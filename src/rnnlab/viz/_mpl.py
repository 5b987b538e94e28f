"""The optional plotting dependencies, imported only when a figure is made.

Figures are plain :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas
(never pyplot: no global figure registry, no GUI backend, nothing to close).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

EXTRA_HINT = 'pip install "rnnlab[viz]"'


class MissingExtraError(ImportError):
    """An optional dependency of :mod:`rnnlab.viz` is not installed."""


def require(module: str, what: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming the ``viz`` extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        dist = {"sklearn": "scikit-learn", "PIL": "Pillow"}.get(package, package)
        raise MissingExtraError(
            f"{what} needs {dist}, which is not installed; install the plotting extra "
            f"with: {EXTRA_HINT}") from exc


def new_figure(**kwargs: Any) -> Any:
    """A Figure with an Agg canvas attached."""
    require("matplotlib", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, out: str | Path | None, **kwargs: Any) -> Path | None:
    """Write ``fig`` to ``out`` (format from the suffix, PNG by default); None: no file."""
    if out is None:
        return None
    path = Path(out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    options = {"dpi": fig.dpi, "bbox_inches": "tight", "facecolor": "white"}
    options.update(kwargs)
    if path.suffix.lower() in ("", ".png"):
        # PNG metadata without the version string keeps the files reproducible
        options.setdefault("metadata", {"Software": None})
    fig.savefig(path, **options)
    return path


def compact_png(path: str | Path, colors: int = 256) -> Path:
    """Re-save a PNG with a palette of at most ``colors`` colours (no dithering): plots
    and page screenshots lose nothing visible and shrink three- to five-fold, which suits
    pictures kept in a repository. Uses Pillow (installed with matplotlib)."""
    image_module = require("PIL.Image", "--compact")
    path = Path(path)
    with image_module.open(path) as image:
        rgb = image.convert("RGB")
    palette = rgb.quantize(colors=colors, method=image_module.Quantize.MEDIANCUT,
                           dither=image_module.Dither.NONE)
    palette.save(path, optimize=True)
    return path


class quiet_missing_glyphs:
    """Silence matplotlib's "Glyph ... missing from font" warnings while drawing text
    taken from a corpus (a symbol the font lacks is drawn as a box; that is all)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from",
                                category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support",
                                category=UserWarning)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._ctx.__exit__(exc_type, exc, tb)
