"""mlwork: the "From Numbers to Neural Networks" workshop deck as a JAX toolkit.

Subpackages, by deck section:

* :mod:`mlwork.foundations` — numbers, functions, limits, derivatives, integrals, graphs (1-7)
* :mod:`mlwork.nn` — activations, losses, models as ``(init, apply)``, backprop (9-13)
* :mod:`mlwork.optim` — optimizers, schedules and regularizers as Optax (14-15)
* :mod:`mlwork.trees` — decision trees, forests and boosting compiled with JAX (16-17)
* :mod:`mlwork.theory` — information theory and learning-theory bounds (18-19)
* :mod:`mlwork.data` — the MNIST family, from IDX files, TFDS or the embedded sample (20)
* :mod:`mlwork.train` — the compiled trainer with Orbax checkpoints, many devices, populations (21)

Subpackages load on first use (``mlwork.optim.optimizer(...)`` or ``from mlwork import optim``),
so ``import mlwork`` is instant, loads no JAX until a subpackage is used (a command line can be
parsed first), and never pulls in TensorFlow.
"""

import importlib

__version__ = "0.2.0"

_LAZY = ("data", "foundations", "nn", "optim", "theory", "train", "trees")
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"mlwork.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'mlwork' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
