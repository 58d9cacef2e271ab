"""The monitor's picture: per-layer gradient norms and update/parameter ratios over epochs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: CS231n's rule of thumb for the update/parameter ratio, drawn as a reference line.
UPDATE_RATIO_GUIDE = 1e-3


def plot_gradient_norms(path: Path, history: Sequence[dict[str, Any]], title: str = "") -> Path:
    """``gradient_norms.png``: the mean gradient norm of every layer per epoch (log scale) next to
    its update/parameter ratio :math:`\\|\\Delta\\theta_l\\| / \\|\\theta_l\\|` with the 1e-3
    guide line; the dead-ReLU fraction, when recorded, is in the right panel's legend. Reads
    the rows :func:`mlwork.train.run_epochs` writes (``grad_norm_layers``,
    ``update_ratio_layers``, ``dead_relu_fraction``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    epochs = [r["epoch"] for r in history]

    def series(field: str) -> dict[str, np.ndarray]:
        names = list(dict.fromkeys(k for r in history for k in (r.get(field) or {})))
        return {k: np.array([np.nan if (r.get(field) or {}).get(k) is None else r[field][k] for r in history])
                for k in names}

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    for name, values in series("grad_norm_layers").items():
        a1.plot(epochs, values, "o-", label=name)
    a1.plot(epochs, [np.nan if r.get("grad_norm") is None else r["grad_norm"] for r in history], "k--",
            label="global")
    a1.set(yscale="log", xlabel="epoch", ylabel=r"$\|\nabla_{\theta_l} J\|$ (mean over sampled steps)",
           title=f"{title}: gradient norm per layer".strip(": "))
    a1.legend(fontsize=7)
    for name, values in series("update_ratio_layers").items():
        a2.plot(epochs, values, "o-", label=name)
    a2.axhline(UPDATE_RATIO_GUIDE, color="gray", ls=":", label="1e-3 guide")
    dead = [r.get("dead_relu_fraction") for r in history]
    dead_note = (f"\ndead ReLU units (last epoch): {100 * (dead[-1] or 0):.1f}%"  # in the title: a legend
                 if any(d is not None for d in dead) else "")                   # entry would have no line
    a2.set(yscale="log", xlabel="epoch", ylabel=r"$\|\Delta\theta_l\| \,/\, \|\theta_l\|$",
           title="update / parameter ratio per layer" + dead_note)
    for ax in (a1, a2):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    a2.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
