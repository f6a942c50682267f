"""Sphinx configuration of the skvarae documentation.

Build with ``make -C docs html`` (runs the gallery examples) or ``make -C docs html-noplot``
(examples rendered without running them). ``SKVARAE_DOCS_OFFLINE=1`` turns off the links to
other projects' documentation (intersphinx), which need the network.
"""

import contextlib
import io
import os
import sys
import warnings
from importlib.util import find_spec
from pathlib import Path

import skvarae

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

# -- Project -------------------------------------------------------------------------------
project = "skvarae"
author = "skvarae developers"
copyright = "skvarae developers, BSD-3-Clause"
release = skvarae.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
offline = os.environ.get("SKVARAE_DOCS_OFFLINE", "0") not in ("", "0")
if not offline:
    extensions.append("sphinx.ext.intersphinx")

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# _static holds files copied as they are (e.g. the evidence benchmark's Markdown tables,
# which evidence.md may include): never documents of their own.
exclude_patterns = ["_build", "_static", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
default_role = "literal"
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc ------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
# Class pages list their members through the autosummary class template; numpydoc's own
# member tables would repeat them (and list scikit-learn's inherited methods).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- MyST (Markdown pages, e.g. evidence.md) ----------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3

# -- intersphinx ---------------------------------------------------------------------------
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "joblib": ("https://joblib.readthedocs.io/en/stable", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}
intersphinx_timeout = 10

# -- sphinx-gallery ------------------------------------------------------------------------
# plot_dask_cluster.py needs dask.distributed: without it, it is shown but not executed.
_executed = r"/plot_" if find_spec("distributed") is not None else r"/plot_(?!dask_cluster)"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": _executed,
    "within_subsection_order": "gallery_order.ExampleOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "doc_module": ("skvarae",),
    "backreferences_dir": "generated/backreferences",
}
os.environ.setdefault("MPLBACKEND", "Agg")


def _limit_torch_threads():
    """Run the gallery's tiny models on one torch thread (``SKVARAE_DOCS_TORCH_THREADS``).

    For networks this small, thread start-up and synchronisation cost more than they save,
    and a shared or loaded machine slows them down many times over. The examples themselves
    do not set this, so that readers do not copy it into code for real data.
    """
    import torch

    torch.set_num_threads(int(os.environ.get("SKVARAE_DOCS_TORCH_THREADS", "1")))


_limit_torch_threads()

# -- HTML ----------------------------------------------------------------------------------
if find_spec("pydata_sphinx_theme") is not None:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc"],
    }
    html_sidebars = {"**": ["sidebar-nav-bs"], "index": [], "auto_examples/index": []}
else:
    html_theme = "alabaster"
html_title = f"skvarae {release}"
html_static_path = ["_static"]
html_show_sourcelink = False


# -- Command-line help, generated from the parser itself -----------------------------------
def _write_cli_help(app):
    """Write ``skvarae [COMMAND] --help`` into generated/cli/*.txt for cli.rst to include."""
    from skvarae.__main__ import main

    out = Path(app.srcdir) / "generated" / "cli"
    out.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        for name, argv in [("skvarae", []), ("demo", ["demo"]), ("fit", ["fit"]),
                           ("map", ["map"]), ("compare", ["compare"])]:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
                main([*argv, "--help"])
            text = buffer.getvalue()
            path = out / f"{name}.txt"
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def setup(app):
    app.connect("builder-inited", _write_cli_help)
    # Warnings raised by the library while Sphinx imports it are not documentation problems.
    warnings.filterwarnings("ignore", category=UserWarning, module="skvarae")
