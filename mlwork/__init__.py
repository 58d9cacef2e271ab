"""mlwork: the "From Numbers to Neural Networks" workshop deck as a JAX toolkit.

Subpackages are imported on use (``import mlwork.nn``, ``from mlwork import nn``), so importing
``mlwork`` stays cheap and never pulls in TensorFlow.
"""

__version__ = "0.1.0"

from mlwork import nn  # noqa: E402  (the core every other subpackage builds on)

__all__ = ["nn", "__version__"]
