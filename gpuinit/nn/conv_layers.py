"""Convolution and pooling layers, NCHW."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..parameter import Parameter
from .block import Block


class Conv2D(Block):
    """2-D convolution over NCHW inputs.

    Args:
        channels: output channels.
        kernel_size: int or (height, width).
        strides, padding, dilation: int or pairs.
        groups: split input and output channels into this many groups.
        in_channels: input channels; 0 (unknown) defers initialization to the first forward.
        activation: name of an activation applied to the output, or None.
        use_bias: whether to add a bias.
        weight_initializer, bias_initializer: the parameters' own initializers.
    """

    def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1,
                 layout="NCHW", in_channels=0, activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer="zeros", dtype="float32", **kwargs):
        super().__init__(**kwargs)
        if layout != "NCHW":
            raise ShapeError(f"Conv2D supports layout 'NCHW' only, got {layout!r}")
        kernel = ops._pair(kernel_size, "kernel_size")
        if channels % groups or (in_channels and in_channels % groups):
            raise ShapeError(f"Conv2D: channels ({channels}) and in_channels ({in_channels}) must "
                             f"be divisible by groups ({groups})")
        if activation is not None:
            ops.activation(np.zeros(1, np.float32), activation)
        self._channels, self._kernel, self._groups, self._act = int(channels), kernel, int(groups), activation
        self._strides, self._padding, self._dilation = strides, padding, dilation
        self.weight = Parameter("weight", shape=(channels, in_channels // groups) + kernel, dtype=dtype,
                                init=weight_initializer, role="weight")
        self.bias = Parameter("bias", shape=(channels,), dtype=dtype, init=bias_initializer,
                              role="bias") if use_bias else None

    @classmethod
    def _alias(cls) -> str:
        return "conv"

    def forward(self, x):
        if x.ndim != 4:
            raise ShapeError(f"layer {self.name!r} expects NCHW input (4 dimensions), got shape {tuple(x.shape)}")
        c = x.shape[1]
        if c % self._groups:
            raise ShapeError(f"layer {self.name!r}: input channels {c} not divisible by groups {self._groups}")
        self._fix_shape(self.weight, (self._channels, c // self._groups) + self._kernel,
                        f"expected {self.weight.shape[1] * self._groups or 'any number of'} input "
                        f"channels (in_channels), got input of shape {tuple(x.shape)}")
        y = ops.conv2d(x, self._value(self.weight, x), self._value(self.bias, x),
                       self._strides, self._padding, self._dilation, self._groups)
        return ops.activation(y, self._act) if self._act else y

    def _extra_repr(self) -> str:
        in_c = self.weight.shape[1] * self._groups or None
        return f"{in_c} -> {self._channels}, kernel_size={self._kernel}, stride={self._strides}"


class _Pool2D(Block):
    _type = "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, layout="NCHW",
                 count_include_pad=True, **kwargs):
        super().__init__(**kwargs)
        if layout != "NCHW":
            raise ShapeError(f"{type(self).__name__} supports layout 'NCHW' only, got {layout!r}")
        self._size, self._strides, self._padding = pool_size, strides, padding
        self._count_include_pad = count_include_pad

    def forward(self, x):
        if x.ndim != 4:
            raise ShapeError(f"layer {self.name!r} expects NCHW input (4 dimensions), got shape {tuple(x.shape)}")
        return ops.pool2d(x, self._type, self._size, self._strides, self._padding, self._count_include_pad)

    def _extra_repr(self) -> str:
        return f"size={self._size}, stride={self._strides}, padding={self._padding}"


class MaxPool2D(_Pool2D):
    """Max pooling over NCHW inputs (window ``pool_size``, stride defaults to the window)."""

    _type = "max"


class AvgPool2D(_Pool2D):
    """Average pooling over NCHW inputs; padding counts as zeros unless ``count_include_pad=False``."""

    _type = "avg"


class GlobalAvgPool2D(Block):
    """Average over the whole spatial extent: ``(N, C, H, W) -> (N, C, 1, 1)``."""

    def forward(self, x):
        return x.mean(axis=(2, 3), keepdims=True)


class GlobalMaxPool2D(Block):
    """Maximum over the whole spatial extent: ``(N, C, H, W) -> (N, C, 1, 1)``."""

    def forward(self, x):
        return x.max(axis=(2, 3), keepdims=True)
