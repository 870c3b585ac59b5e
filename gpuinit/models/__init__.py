"""Built-in models, made of gpuinit's own layers, with published parameter counts.

``get(name)`` builds one by name; ``MODELS`` lists the names with their default example inputs.
Each module holds one family: ``mlp`` (the textbook chapter's), ``cnn`` (LeNet, ResNet),
``gpt2``, ``llama``.
"""

from __future__ import annotations

from ..errors import GpuInitError
from .cnn import lenet, resnet18, resnet50
from .gpt2 import GPT2, gpt2
from .llama import Llama, llama2
from .mlp import mlp

# name -> (builder, default example input shape, input dtype)
MODELS = {
    "mlp": (mlp, (2, 20), "float32"),
    "lenet": (lenet, (1, 1, 28, 28), "float32"),
    "resnet18": (resnet18, (1, 3, 224, 224), "float32"),
    "resnet50": (resnet50, (1, 3, 224, 224), "float32"),
    "gpt2-small": (lambda **kw: gpt2("small", **kw), (1, 64), "int64"),
    "gpt2-medium": (lambda **kw: gpt2("medium", **kw), (1, 64), "int64"),
    "gpt2-large": (lambda **kw: gpt2("large", **kw), (1, 64), "int64"),
    "gpt2-xl": (lambda **kw: gpt2("xl", **kw), (1, 64), "int64"),
    "llama2-7b": (lambda **kw: llama2("7b", **kw), (1, 64), "int64"),
    "llama2-13b": (lambda **kw: llama2("13b", **kw), (1, 64), "int64"),
    "llama2-70b": (lambda **kw: llama2("70b", **kw), (1, 64), "int64"),
}
DEFAULT_MODEL = "gpt2-small"


def get(name: str, dtype: str = "float32"):
    """Build the model ``name`` (see :data:`MODELS`) with parameters of ``dtype``."""
    try:
        builder = MODELS[name][0]
    except KeyError:
        raise GpuInitError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return builder(dtype=dtype)


def count_parameters(net) -> int:
    """Number of trainable parameter elements (running statistics excluded), shared ones once."""
    return sum(p.size for p in net.collect_params().values() if p.grad_req != "null")


__all__ = ["DEFAULT_MODEL", "GPT2", "Llama", "MODELS", "count_parameters", "get", "gpt2", "lenet",
           "llama2", "mlp", "resnet18", "resnet50"]
