"""MXNet's ``mxnet.base`` names that Gluon code reaches: ``MXNetError``.

``MXNetError`` is :class:`~gpuinit.errors.GpuInitError` itself, so ``except mx.base.MXNetError``
catches every error gpuinit raises on purpose; among them asking for a GPU that is not usable,
which is what the book's ``try_gpu()`` relies on to fall back to the CPU::

    try:
        ctx = mx.gpu()
        _ = nd.zeros((1,), ctx=ctx)
    except mx.base.MXNetError:
        ctx = mx.cpu()
"""

from .errors import GpuInitError as MXNetError

__all__ = ["MXNetError"]
