"""The deck's neural-network core (sections 9-13): activations, losses, models, backprop."""

from mlwork.nn.activations import (
    ACTIVATIONS,
    get_activation,
    identity,
    log_softmax,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_grad,
    softmax_vjp,
    tanh,
    tanh_grad,
)
from mlwork.nn.backprop import backprop, forward_cache
from mlwork.nn.cnn import CNN, cnn
from mlwork.nn.layers import batch_norm, batch_norm_init, dropout
from mlwork.nn.losses import (
    LOSSES,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy,
    mae,
    mse,
    softmax_cross_entropy,
)
from mlwork.nn.models import COMPUTE_DTYPES, Model, count_params, dense, from_flax, mlp, perceptron

__all__ = [
    "ACTIVATIONS", "COMPUTE_DTYPES", "LOSSES", "CNN", "Model",
    "backprop", "batch_norm", "batch_norm_init", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "categorical_cross_entropy", "cnn", "count_params", "dense", "dropout", "forward_cache",
    "from_flax", "get_activation", "identity", "log_softmax", "mae", "mlp", "mse", "perceptron",
    "relu", "relu_grad", "sigmoid", "sigmoid_grad", "softmax", "softmax_cross_entropy",
    "softmax_grad", "softmax_vjp", "tanh", "tanh_grad",
]
