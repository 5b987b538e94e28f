"""The site's own Sphinx extension: source pages with line anchors, the gallery made from
the tutorials' figures, and MathJax copied in from its registry package.

Source pages
    One HTML page per module of the installed ``rnnlab`` package, ``source/<dotted
    module>.html``, highlighted by Pygments with one ``<span id="L-<line>">`` per line: the
    anchors :func:`rnnlab.course.source_url` links a course equation to. The lines that
    carry an ``# eq:`` marker are highlighted. ``source/index.html`` lists the modules.

Gallery
    :func:`rnnlab.course.gallery` displays a figure as a PNG whose ``rnnlab.gallery`` text
    chunk holds its key and caption. After a tutorial has been read (its notebook executed,
    or its outputs restored from the cache), the marked PNGs among its output images are
    kept in the build environment, and the ``rnnlab-gallery`` directive (``gallery.md``)
    shows them all, each with its caption and a link to the figure in its page. The
    gallery is therefore made by the build from the tutorials' own runs: nothing is
    committed.

MathJax
    ``_static/mathjax`` is copied at build time from PyPI's ``django-static-mathjax``
    (MathJax 3, SVG output: no web fonts), so the site typesets offline, from ``file://``
    too.
"""

from __future__ import annotations

import html
import json
import posixpath
import shutil
import struct
from importlib import resources
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx
from sphinx.directives.other import TocTree
from sphinx.util import logging
from sphinx.util.matching import patfilter

logger = logging.getLogger(__name__)

SOURCE_PREFIX = "source/"


# ------------------------------------------------------------------ source pages
def package_modules(package: str = "rnnlab") -> list[tuple[str, str, str]]:
    """``(dotted module, path inside the package, text)`` for every module of
    ``package``, sorted by module name."""
    found: list[tuple[str, str, str]] = []

    def walk(entry: Any, prefix: str) -> None:
        for child in sorted(entry.iterdir(), key=lambda e: e.name):
            if child.is_dir() and child.name != "__pycache__":
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".py"):
                rel = f"{prefix}{child.name}"
                dotted = package + "." + rel[: -len(".py")].replace("/", ".")
                found.append((dotted.removesuffix(".__init__"), rel,
                              child.read_text(encoding="utf-8")))

    walk(resources.files(package), "")
    return sorted(found)


def highlight_source(text: str, marked_lines: list[int]) -> str:
    """The module's text as HTML, each line in a ``<span id="L-<n>">`` (the line numbers
    are drawn by CSS counters, so copied code has none); ``marked_lines`` (1-based)
    highlighted."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(linespans="L", hl_lines=marked_lines,
                              cssclass="highlight rnnlab-source", wrapcode=True)
    return highlight(text, PythonLexer(), formatter)


def collect_source_pages(app: Sphinx) -> Any:
    if app.builder.format != "html":
        return
    from rnnlab.course import MARKER

    modules = package_modules()
    rows = []
    for dotted, rel, text in modules:
        marked = [n for n, line in enumerate(text.splitlines(), 1) if MARKER.search(line)]
        body = (f'<h1>Source of <code>rnnlab/{html.escape(rel)}</code></h1>\n'
                f'<p>Module <code>{html.escape(dotted)}</code> as installed. '
                f'{_marker_note(len(marked))} <a href="index.html">All modules</a>.</p>\n'
                + highlight_source(text, marked))
        rows.append(f'<li><a href="{html.escape(dotted)}.html"><code>{html.escape(dotted)}'
                    f'</code></a>{" — " + str(len(marked)) + " marked" if marked else ""}'
                    f'</li>')
        yield (f"{SOURCE_PREFIX}{dotted}",
               {"title": f"Source: {dotted}", "body": body,
                "parents": [{"link": "index.html", "title": "Source"}]},
               "page.html")
    body = ("<h1>rnnlab's source</h1>\n<p>Every module of the installed package, with one "
            "anchor per line (<code>#L-12</code>). The course's equations link to the line "
            "that computes them; those lines are highlighted.</p>\n<ul>\n"
            + "\n".join(rows) + "\n</ul>\n")
    yield f"{SOURCE_PREFIX}index", {"title": "Source", "body": body}, "page.html"


def _marker_note(count: int) -> str:
    if not count:
        return ""
    return (f"The {count} highlighted line{'s' if count > 1 else ''} compute equations "
            f"the course shows (<code># eq:</code> markers).")


# ------------------------------------------------------------------ the course's toctree
class CourseToctree(TocTree):
    """``rnnlab-course-toctree``: a globbing toctree that may match nothing.

    Sphinx warns (and ``-W`` fails) when a toctree glob matches no document; the course's
    index must build with zero, some or all of its pages, so when none of its patterns
    matches a document, this says so in a paragraph instead.
    """

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        env.glob_toctrees.add(env.docname)
        patterns = [line.strip() for line in self.content if line.strip()]
        docdir = posixpath.dirname(env.docname)
        found = [d for p in patterns
                 for d in patfilter(env.found_docs, posixpath.normpath(posixpath.join(docdir, p)))]
        if not found:
            return [nodes.paragraph(text="No course pages in this checkout yet.")]
        self.options["glob"] = True
        return super().run()


# ------------------------------------------------------------------ gallery
class gallery_placeholder(nodes.General, nodes.Element):
    """Where the ``rnnlab-gallery`` directive puts the figures (filled at write time)."""


class GalleryDirective(Directive):
    """``rnnlab-gallery``: every figure the tutorials offered to the gallery."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        env.rnnlab_gallery_docs = getattr(env, "rnnlab_gallery_docs", set())
        env.rnnlab_gallery_docs.add(env.docname)
        return [gallery_placeholder()]


def png_text_chunks(data: bytes) -> dict[str, str]:
    """The ``tEXt`` chunks of a PNG (keyword to text); empty for anything else."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return {}
    found, at = {}, 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at: at + 8])
        body = data[at + 8: at + 8 + length]
        if kind == b"tEXt" and b"\0" in body:
            keyword, text = body.split(b"\0", 1)
            found[keyword.decode("latin-1")] = text.decode("latin-1")
        if kind in (b"IDAT", b"IEND"):
            break
        at += 12 + length
    return found


def gallery_mark(data: bytes) -> dict[str, str] | None:
    """``{"key", "caption"}`` when the PNG was made by :func:`rnnlab.course.gallery`."""
    from rnnlab.course import GALLERY_METADATA  # the chunk course.gallery writes

    text = png_text_chunks(data).get(GALLERY_METADATA)
    if text is None:
        return None
    try:
        mark = json.loads(text)
    except ValueError:
        return None
    if not isinstance(mark, dict) or not {"key", "caption"} <= set(mark):
        return None
    return {"key": str(mark["key"]), "caption": str(mark["caption"])}


def _image_file(app: Sphinx, node: nodes.image) -> Path | None:
    uri = node.get("candidates", {}).get("*") or node.get("uri", "")
    if not uri or "://" in uri or uri.startswith("data:"):
        return None
    for candidate in (Path(app.srcdir) / uri.lstrip("/"),
                      Path(app.env.relfn2path(uri, app.env.docname)[1])):
        if candidate.is_file():
            return candidate
    return None


def read_gallery_figures(app: Sphinx, doctree: nodes.document) -> None:
    """After a page was read (its notebook executed, or its outputs taken from the cache),
    keep the figures :func:`rnnlab.course.gallery` marked, and give each an anchor."""
    env = app.env
    store: dict[str, list[dict[str, Any]]] = getattr(env, "rnnlab_gallery", {})
    env.rnnlab_gallery = store  # type: ignore[attr-defined]
    store.pop(env.docname, None)
    entries = []
    for node in doctree.findall(nodes.image):
        path = _image_file(app, node)
        if path is None or path.suffix.lower() != ".png":
            continue
        data = path.read_bytes()
        mark = gallery_mark(data)
        if mark is None:
            continue
        target = node.parent if isinstance(node.parent, nodes.Element) else node
        target["ids"].append(f"gallery-{mark['key']}")
        entries.append({**mark, "png": data})
    if entries:
        store[env.docname] = entries


def purge_gallery(app: Sphinx, env: Any, docname: str) -> None:
    getattr(env, "rnnlab_gallery", {}).pop(docname, None)
    getattr(env, "rnnlab_gallery_docs", set()).discard(docname)


def merge_gallery(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    env.rnnlab_gallery = getattr(env, "rnnlab_gallery", {})
    env.rnnlab_gallery.update(getattr(other, "rnnlab_gallery", {}))
    env.rnnlab_gallery_docs = getattr(env, "rnnlab_gallery_docs", set())
    env.rnnlab_gallery_docs |= getattr(other, "rnnlab_gallery_docs", set())


def gallery_is_outdated(app: Sphinx, env: Any) -> list[str]:
    """The gallery page is rewritten with every build (its figures come from others)."""
    return sorted(getattr(env, "rnnlab_gallery_docs", set()))


def fill_gallery(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    placeholders = list(doctree.findall(gallery_placeholder))
    if not placeholders:
        return
    env = app.env
    store: dict[str, list[dict[str, Any]]] = getattr(env, "rnnlab_gallery", {})
    figures: list[nodes.Node] = []
    seen: dict[str, str] = {}
    folder = Path(app.outdir) / "_images" / "gallery"
    page_dir = posixpath.dirname(docname)
    for page in sorted(d for d in store if d in env.found_docs):
        for entry in store[page]:
            key = entry["key"]
            if key in seen:
                logger.warning(f"gallery key {key!r} is used by {seen[key]} and {page}",
                               location=docname)
                continue
            seen[key] = page
            if app.builder.format == "html":
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{key}.png").write_bytes(entry["png"])
            uri = posixpath.relpath(f"_images/gallery/{key}.png", page_dir or ".")
            figure = nodes.figure(ids=[f"gallery-{key}"], classes=["rnnlab-gallery"])
            figure += nodes.image(uri=uri, alt=entry["caption"], candidates={"*": uri})
            caption = nodes.caption()
            caption += nodes.Text(entry["caption"] + " — from ")
            title = env.titles[page].astext() if page in env.titles else page
            caption += nodes.reference("", title,
                                       refuri=app.builder.get_relative_uri(docname, page)
                                       + f"#gallery-{key}")
            figure += caption
            figures.append(figure)
    if not figures:
        note = nodes.paragraph(text="No figures: the tutorials were not executed in this "
                                    "build (RNNLAB_DOCS_EXECUTE=off), or none is present.")
        figures = [nodes.note("", note)]
    for placeholder in placeholders:
        placeholder.replace_self([n.deepcopy() for n in figures])


# ------------------------------------------------------------------ MathJax
def mathjax_source() -> Path:
    """MathJax 3's ``es5`` folder in PyPI's ``django-static-mathjax``."""
    import mathjax  # django-static-mathjax: the MathJax distribution as package data

    return Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"


#: What the site loads: ``tex-svg.js`` (TeX input, SVG output with its font data), the TeX
#: extensions it may autoload, the menu and its accessibility parts. Not copied: the CHTML
#: output and its web fonts, the speech-rule engine.
MATHJAX_PARTS = ("tex-svg.js", "input/tex/extensions", "output/svg", "ui", "a11y",
                 "adaptors")


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)


def check_mathjax_package(app: Sphinx) -> None:
    try:
        source = mathjax_source()
    except ImportError:
        logger.warning("MathJax: django-static-mathjax is not installed (pip install "
                       "'rnnlab[docs]'): the site cannot typeset its formulas offline")
        return
    missing = [p for p in MATHJAX_PARTS if not (source / p).exists()]
    if missing:
        logger.warning(f"MathJax: {source} lacks {', '.join(missing)}")


# ------------------------------------------------------------------ execution times
def report_execution(app: Sphinx, exception: Exception | None) -> None:
    """Print how long each notebook ran when it last ran (the course's time budget)."""
    if exception is not None:
        return
    try:
        from myst_nb.sphinx_ import NbMetadataCollector
    except ImportError:
        return
    rows = []
    for docname in sorted(app.env.found_docs):
        data = NbMetadataCollector.get_exec_data(app.env, docname) or {}
        if data.get("method") and data.get("runtime") is not None:
            rows.append((docname, data["method"], float(data["runtime"])))
    if rows:
        total = sum(r[2] for r in rows)
        lines = [f"  {d}: {t:.1f} s ({m})" for d, m, t in rows]
        logger.info("notebooks, their last runs (%d, %.1f s in all):\n%s", len(rows),
                    total, "\n".join(lines))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(gallery_placeholder)
    app.add_directive("rnnlab-gallery", GalleryDirective)
    app.add_directive("rnnlab-course-toctree", CourseToctree)
    app.connect("builder-inited", check_mathjax_package)
    app.connect("html-collect-pages", collect_source_pages)
    app.connect("doctree-read", read_gallery_figures)
    app.connect("env-purge-doc", purge_gallery)
    app.connect("env-merge-info", merge_gallery)
    app.connect("env-get-updated", gallery_is_outdated)
    app.connect("doctree-resolved", fill_gallery)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", report_execution)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
