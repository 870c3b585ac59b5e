"""The textbook chapter's multilayer perceptron."""

from .. import nn


def mlp(hidden: int = 256, outputs: int = 10, dtype: str = "float32"):
    """``Dense(256, relu) -> Dense(10)`` with deferred input sizes."""
    net = nn.Sequential()
    net.add(nn.Dense(hidden, activation="relu", dtype=dtype), nn.Dense(outputs, dtype=dtype))
    return net
