"""MXNet's ``mxnet.gluon`` namespace over gpuinit, so Gluon 1.x code runs with only imports changed.

``gluon.nn`` is :mod:`gpuinit.nn`, ``gluon.Parameter``/``gluon.ParameterDict``/``gluon.Constant``
(a fixed-value parameter, what ``ParameterDict.get_constant`` makes) are gpuinit's, and
``gluon.parameter`` is :mod:`gpuinit.parameter`. What Gluon has for training (``Trainer``,
``loss``, ``data``, ``utils``, ...) is out of gpuinit's scope: asking for it raises an
``AttributeError`` that says so.
"""

import sys

from .. import nn, parameter
from ..errors import DeferredInitializationError
from ..nn import Block, HybridBlock
from ..parameter import Constant, Parameter, ParameterDict

# ``import gpuinit.gluon.nn`` and ``from gpuinit.gluon.parameter import ...`` work as in MXNet.
sys.modules.setdefault(__name__ + ".nn", nn)
sys.modules.setdefault(__name__ + ".parameter", parameter)

_OUT_OF_SCOPE = ("Trainer", "loss", "data", "utils", "rnn", "model_zoo", "contrib", "SymbolBlock",
                 "metric", "probability")


def __getattr__(name):
    if name in _OUT_OF_SCOPE:
        raise AttributeError(f"gpuinit.gluon has no {name!r}: gpuinit initializes parameters and runs "
                             "forward passes; training (Trainer, losses, data loaders) is out of its scope")
    raise AttributeError(f"module 'gpuinit.gluon' has no attribute {name!r}")


__all__ = ["Block", "Constant", "DeferredInitializationError", "HybridBlock", "Parameter", "ParameterDict",
           "nn", "parameter"]
