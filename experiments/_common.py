"""Helpers shared by the experiment modules: the command line, output folders and PNG figures.

Light on purpose: importing it loads neither JAX nor matplotlib, so an experiment builds its parser
and answers ``--help`` or a bad flag at once. Matplotlib is imported (with the Agg backend: the
experiments write PNG files and never need a screen) on the first call of :func:`pyplot`, or the
first use of this module's ``plt`` attribute.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The last line of every experiment's ``--help``: where the one table of exit codes lives.
EXIT_CODES_SEE_ALSO = "(the exit codes of every experiment: the docs' reliability guide)"


@functools.cache
def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend (imported on the first call)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def __getattr__(name: str) -> Any:
    # ``from experiments._common import plt`` keeps working, but imports matplotlib only then.
    if name == "plt":
        return pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def exit_codes_epilog(codes: Mapping[int, str]) -> str:
    """An experiment's exit codes as the epilog of its ``--help`` (plain text)."""
    rows = [f"  {code:>3}  {meaning}" for code, meaning in codes.items()]
    return "\n".join(["exit codes:", *rows, EXIT_CODES_SEE_ALSO])


def experiment_parser(name: str, description: str, codes: Mapping[int, str]) -> argparse.ArgumentParser:
    """The parser of ``python -m experiments.<name>``: plain-text ``description`` kept as written,
    and the experiment's exit ``codes`` as the epilog. Each flag's help says its default with
    ``(default: %(default)s)``."""
    return argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description,
                                   epilog=exit_codes_epilog(codes),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_out_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: str) -> None:
    parser.add_argument("--out", default=default, metavar="DIR",
                        help="folder for the experiment's outputs, created if missing (default: %(default)s)")


def int_list(parser: argparse.ArgumentParser, flag: str, text: str, *, at_least: int = 1) -> list[int]:
    """``"8,16,4"`` -> ``[8, 16, 4]``: at least ``at_least`` positive integers, or a usage error
    (exit 2) in the one pattern ``--flag must be ...; got ...``."""
    what = f"at least {at_least} comma-separated positive integers" if at_least > 1 else \
        "comma-separated positive integers"
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) < at_least or any(v <= 0 for v in values):
        parser.error(f"{flag} must be {what}; got {text!r}")
    return values


def out_dir(path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save ``fig`` as a PNG and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path
