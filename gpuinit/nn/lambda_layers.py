"""Layers around a function: Lambda (a Block) and HybridLambda (a HybridBlock, called with ``F``)."""

from __future__ import annotations

from ..errors import ArgumentError, ArgumentTypeError
from .block import Block, HybridBlock


class Lambda(Block):
    """A block around a function: ``forward(x, *args)`` returns ``function(x, *args)``.

    Args:
        function: a callable, or the name of a ``gpuinit.nd`` function (``'tanh'``).

    Raises:
        ArgumentError: a name that ``gpuinit.nd`` does not have; ArgumentTypeError: neither a name
            nor a callable.
    """

    def __init__(self, function, prefix=None, **kwargs):
        super().__init__(prefix=prefix, **kwargs)
        self._function = _nd_function(self, function)

    def forward(self, x, *args):
        return self._function(x, *args)

    def _extra_repr(self) -> str:
        return getattr(self._function, "__name__", repr(self._function))


class HybridLambda(Lambda, HybridBlock):
    """Gluon's HybridLambda: ``function(F, x, *args)`` with ``F`` = ``gpuinit.nd``; a name is an
    ``nd`` function called as ``F.name(x, *args)``."""

    def __init__(self, function, prefix=None, **kwargs):
        HybridBlock.__init__(self, prefix=prefix, **kwargs)
        if isinstance(function, str):
            self._function = _nd_function(self, function)
        else:
            if not callable(function):
                raise ArgumentTypeError(f"{self._where()}: function must be a callable or the name of a "
                                        f"gpuinit.nd function, got {function!r}")
            from .. import nd
            self._function = lambda x, *args: function(nd, x, *args)
            self._function.__name__ = getattr(function, "__name__", "function")


def _nd_function(block, function):
    if isinstance(function, str):
        from .. import nd
        found = getattr(nd, function, None)
        if not callable(found):
            raise ArgumentError(f"{block._where()}: gpuinit.nd has no function {function!r}; pass a callable "
                                "or the name of a gpuinit.nd function such as 'tanh'")
        return found
    if not callable(function):
        raise ArgumentTypeError(f"{block._where()}: function must be a callable or the name of a gpuinit.nd "
                                f"function, got {function!r}")
    return function
