"""The site's own Sphinx extension: source pages with line anchors, the gallery made from
the tutorials' figures, and MathJax copied in from its registry package.

Source pages
    One HTML page per module of the installed ``rnnlab`` package, ``source/<dotted
    module>.html``, highlighted by Pygments with one ``<span id="L-<line>">`` per line: the
    anchors :func:`rnnlab.course.source_url` links a course equation to. The lines that
    carry an ``# eq:`` marker are highlighted. ``source/index.html`` lists the modules.

Gallery
    :func:`rnnlab.course.gallery` displays a figure with ``rnnlab.gallery`` output metadata
    (its key and caption). After a tutorial has been executed (or its outputs restored from
    the cache), the figures it marked are read from the executed notebook myst-nb writes,
    kept in the build environment, and the ``rnnlab-gallery`` directive (``gallery.md``)
    shows them all, each with its caption and a link to its page. The gallery is therefore
    made by the build from the tutorials' own runs: nothing is committed.

MathJax
    ``_static/mathjax`` is copied at build time from PyPI's ``jupyter-server-mathjax``
    (MathJax 2.7 with its STIX-Web fonts), so the site typesets offline.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import posixpath
import shutil
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

GALLERY_METADATA = "rnnlab.gallery"
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
    """The module's text as HTML: a table of line numbers and code, each code line in a
    ``<span id="L-<n>">``; ``marked_lines`` (1-based) highlighted."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(linenos="table", linespans="L", hl_lines=marked_lines,
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


def _notebook_path(app: Sphinx, docname: str) -> Path:
    folder = Path(app.env.mystnb_config.output_folder)  # type: ignore[attr-defined]
    return folder.joinpath(*docname.split("/")).with_suffix(".ipynb")


def gallery_entries_of(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """The outputs of an executed notebook that :func:`rnnlab.course.gallery` marked:
    ``{"key", "caption", "png"}`` with the PNG's bytes."""
    entries = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            meta = output.get("metadata", {}).get(GALLERY_METADATA)
            data = output.get("data", {}).get("image/png")
            if not isinstance(meta, dict) or data is None:
                continue
            raw = "".join(data) if isinstance(data, list) else data
            try:
                png = base64.b64decode(raw, validate=False)
            except binascii.Error:
                continue
            entries.append({"key": str(meta.get("key")), "caption": str(meta.get("caption")),
                            "png": png})
    return entries


def read_gallery_figures(app: Sphinx, doctree: nodes.document) -> None:
    """After a page was read (a notebook executed), keep the figures it marked."""
    env = app.env
    store: dict[str, list[dict[str, Any]]] = getattr(env, "rnnlab_gallery", {})
    env.rnnlab_gallery = store  # type: ignore[attr-defined]
    store.pop(env.docname, None)
    if not hasattr(env, "mystnb_config"):
        return
    path = _notebook_path(app, env.docname)
    if not path.is_file() or path.stat().st_mtime < env.doc2path(env.docname).stat().st_mtime:
        return
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    entries = gallery_entries_of(notebook)
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
                                       refuri=app.builder.get_relative_uri(docname, page))
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
    import jupyter_server_mathjax

    return Path(jupyter_server_mathjax.__file__).resolve().parent / "static"


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    shutil.copytree(mathjax_source(), Path(app.outdir) / "_static" / "mathjax",
                    dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


def check_mathjax_package(app: Sphinx) -> None:
    if not (mathjax_source() / "MathJax.js").is_file():
        logger.warning("MathJax: jupyter-server-mathjax has no static/MathJax.js")


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
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True,
            "env_version": 1}
