"""Sphinx configuration of rnnlab's documentation site: the course (executed MyST
notebooks), the API reference, the source pages the course's equations link to, the
gallery made from the tutorials' own figures, and MathJax served from the site itself.

Build (what CI runs; every tutorial executed, a warning fails)::

    RNNLAB_TUTORIAL=quick sphinx-build -W --keep-going -b html docs docs/_build/html

Quick local builds: ``RNNLAB_DOCS_EXECUTE=off`` (no tutorial runs, the gallery stays
empty) or ``RNNLAB_DOCS_EXECUTE=cache`` (a tutorial re-runs only when its code changed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "rnnlab"
author = "the rnnlab authors"
copyright = "the rnnlab authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "rnnlab_site",
]

# ----------------------------------------------------------------- sources
exclude_patterns = [
    "_build", "_extra", "**/.ipynb_checkpoints", "jupyter_execute",
    "architecture.md",         # included by built.md
    "gallery/**",              # README's committed pictures and their script, not pages
]
root_doc = "index"

# ------------------------------------------------------------------ MyST / myst-nb
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("RNNLAB_DOCS_EXECUTE", "force")
if nb_execution_mode not in ("force", "cache", "off", "auto", "inline", "lazy"):
    raise ValueError("RNNLAB_DOCS_EXECUTE: expected force, cache or off, got "
                     f"{nb_execution_mode!r}")
# One BLAS thread per notebook kernel (the kernels inherit this process's environment):
# the course's arrays are small, and with two kernels at once (-j auto) OpenBLAS's spinning
# threads made the quick pages up to ten times slower on two cores. Set them to override.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
nb_execution_raise_on_error = True          # a failing cell (a failed assert) fails the build
nb_execution_show_tb = True                 # ... and the log shows its traceback
nb_execution_timeout = int(os.environ.get("RNNLAB_DOCS_CELL_TIMEOUT", "180"))  # per cell, s
nb_execution_in_temp = False                # a page runs in docs/tutorials/
nb_render_markdown_format = "myst"          # course.Equation's markdown holds $$ math
nb_merge_streams = True
nb_ipywidgets_js = {}                       # no widget scripts from a CDN
nb_kernel_rgx_aliases = {".*": "python3"}

# ------------------------------------------------------------------ autodoc / numpydoc
autodoc_member_order = "bysource"
autodoc_typehints = "none"                 # the docstrings say the shapes and types
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "both"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# ------------------------------------------------------------------ HTML, offline
html_theme = "pydata_sphinx_theme"
html_title = "rnnlab"
html_static_path = ["_static"]
# Pages a tutorial writes while it runs (tutorial 7's activation page goes to
# docs/_extra/activations/), copied to the site's root after the tutorials have run.
(HERE / "_extra").mkdir(exist_ok=True)
html_extra_path = ["_extra"]
html_css_files = ["rnnlab.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "icon_links": [],
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_context = {"default_mode": "light"}   # the theme logs an error without one
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
# MathJax 3 from PyPI's django-static-mathjax (the MathJax distribution as package data; no
# Django needed), copied into _static/mathjax by rnnlab_site. SVG output: the glyphs come
# from MathJax's own JavaScript font data, so no web font is loaded (Chromium refuses
# fonts to pages opened from file://, which is how MathJax 2's HTML-CSS output failed).
mathjax_path = "mathjax/tex-svg.js"
mathjax3_config = {
    "tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
    "svg": {"fontCache": "global"},
}
