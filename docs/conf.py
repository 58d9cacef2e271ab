"""Sphinx configuration of the mlwork docs site.

Build: ``uv run --group docs sphinx-build -W --keep-going -b html docs docs/_build/html`` from the
repository root (``nitpicky``: a cross-reference to a name that does not exist fails the build).
Notebooks (``docs/notebooks/*.md``, MyST markdown) are executed by myst-nb: from its cache locally
(``MLWORK_DOCS_EXECUTE=cache``, the default), afresh in CI (``MLWORK_DOCS_EXECUTE=force``).
Nothing is fetched from the network at build time (no intersphinx), nor when the site is read
(MathJax is copied into the site by sphinx-mathjax-offline).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import mlwork  # noqa: E402

project = "mlwork"
author = "the mlwork authors"
copyright = "the mlwork authors; Apache-2.0"
release = version = mlwork.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from the site itself: the pages render math offline too
    "myst_nb",
    "sphinx_copybutton",
    "mlwork_docs",  # docs/_ext: benchmark tables from bench/results.jsonl, deep references resolved
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "jupyter_execute", ".jupyter_cache", "**/.ipynb_checkpoints", "README.md"]

# --- warnings are errors (sphinx-build -W --keep-going); every cross-reference must resolve ---
nitpicky = True
# Types from other libraries: no intersphinx (the build is offline), so their names cannot resolve.
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|jnp|optax|flax|nn\.Module|numpy|np|orbax|chex|sklearn|scipy|grain|tensorflow|tfds"
               r"|matplotlib|PIL|tensorboardX|pooch|collections|typing|pathlib|os|concurrent|threading|socket"
               r"|types|enum|fractions|dataclasses|argparse|signal|subprocess|io|json|functools|contextlib)(\..*)?"),
    (r"py:class", r"(Array|ArrayLike|PyTree|Pytree|Params|Callable|Any|Path|Sequence|Mapping|Iterator|Iterable"
                  r"|ScalarOrSchedule|MaskArg|Schedule|GradientTransformation|Float|Int|DTypeLike|Self"
                  r"|NoneType|ellipsis|callable|optional|default|array_like|array-like|pytree|shape.*|float32.*"
                  r"|int32.*|bool_|dtype|Key|PRNGKey|Loss|Metric|.* or .*|.*\[.*)"),
    # Type aliases and return types that are not public names of their own.
    (r"py:class", r"(Variables|Mesh|mlwork\.train\.exported\.ExportedRun)"),
    (r"py:(obj|data)", r".*\.(T|_.*)"),
]

# --- autodoc / napoleon: Google-style docstrings (Args/Returns/Raises/Example) ---
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
autodoc_default_options = {"exclude-members": "count, index, _asdict, _make, _replace, _fields, _field_defaults"}
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
add_module_names = False
python_use_unqualified_type_names = True

# --- MyST / myst-nb ---
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("MLWORK_DOCS_EXECUTE", "cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_execution_cache_path = str(Path(__file__).parent / "_build" / ".jupyter_cache")
nb_execution_excludepatterns = ["guides/*", "api/*", "index.md", "getting_started.md", "benchmarks.md",
                                "changelog.md"]

# --- HTML ---
html_theme = "sphinx_book_theme"
html_title = f"mlwork {version}"
html_static_path: list[str] = []  # no static files of our own (an absent _static is a warning)
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": True,
}
html_last_updated_fmt = None
