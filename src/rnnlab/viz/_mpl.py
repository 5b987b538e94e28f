"""The optional plotting dependencies, imported only when a figure is made.

Figures are plain :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas
(never pyplot: no global figure registry, no GUI backend, nothing to close).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from rnnlab.data.safefiles import write_atomic

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


def figure_path(out: str | Path) -> Path:
    """The file a figure saved to ``out`` lands in: ``out`` itself, with ``.png`` added
    when it has no suffix (as matplotlib does)."""
    path = Path(out)
    return path if path.suffix else path.with_name(path.name + ".png")


def save_figure(fig: Any, out: str | Path | None, **kwargs: Any) -> Path | None:
    """Write ``fig`` to ``out`` (format from the suffix; no suffix: ``.png`` added) through
    :func:`rnnlab.data.safefiles.write_atomic` (atomic, never through a link); returns the
    file written, None for no file (``out`` None)."""
    if out is None:
        return None
    path = figure_path(out)
    options = {"dpi": fig.dpi, "bbox_inches": "tight", "facecolor": "white"}
    options.update(kwargs)
    options["format"] = path.suffix[1:].lower()
    if options["format"] == "png":
        # PNG metadata without the version string keeps the files reproducible
        options.setdefault("metadata", {"Software": None})
    write_atomic(path, lambda fh: fig.savefig(fh, **options))
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
    write_atomic(path, lambda fh: palette.save(fh, format="PNG", optimize=True))
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
