"""Convolution and pooling layers, NCHW."""

from __future__ import annotations

from .. import checks, ops
from ..errors import ArgumentError, ShapeError
from ..parameter import Parameter
from .basic_layers import _initializer
from .block import HybridBlock


def _layout(block, layout) -> str:
    if layout != "NCHW":
        raise ArgumentError(f"{block._where()}: layout must be 'NCHW' (the only layout supported), got "
                            f"{layout!r}; transpose NHWC inputs with x.transpose(0, 3, 1, 2)")
    return layout


class Conv2D(HybridBlock):
    """2-D convolution over NCHW inputs.

    Args:
        channels: output channels.
        kernel_size: int or (height, width).
        strides, dilation: positive int or pairs; padding: non-negative int or pair.
        groups: split input and output channels into this many groups (must divide both).
        in_channels: input channels; 0 (unknown) defers initialization to the first forward.
        activation: name of an activation applied to the output, or None.
        use_bias: whether to add a bias.
        weight_initializer, bias_initializer: the parameters' own initializers.

    Raises:
        ArgumentError: an argument the layer cannot take; the message names the layer.
    """

    def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1,
                 layout="NCHW", in_channels=0, activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer="zeros", dtype="float32", **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        _layout(self, layout)
        channels = checks.positive_int(channels, "channels", where, hint="pass the output channels, e.g. Conv2D(16, 3)")
        kernel = checks.int_tuple(kernel_size, 2, "kernel_size", where)
        self._strides = checks.int_tuple(strides, 2, "strides", where)
        self._padding = checks.int_tuple(padding, 2, "padding", where, minimum=0)
        self._dilation = checks.int_tuple(dilation, 2, "dilation", where)
        groups = checks.positive_int(groups, "groups", where)
        in_channels = checks.non_negative_int(in_channels, "in_channels", where,
                                              hint="pass the input channels, or 0 to infer them")
        if channels % groups or in_channels % groups:
            raise ArgumentError(f"{where}: channels ({channels}) and in_channels ({in_channels}) must be "
                                f"divisible by groups ({groups}); change groups or the channel counts")
        if activation is not None:
            ops.check_activation(activation, where)
        use_bias = checks.flag(use_bias, "use_bias", where)
        self._channels, self._kernel, self._groups, self._act = channels, kernel, groups, activation
        self.weight = Parameter("weight", shape=(channels, in_channels // groups) + kernel, dtype=dtype,
                                init=_initializer(self, weight_initializer, "weight_initializer"), role="weight")
        self.bias = Parameter("bias", shape=(channels,), dtype=dtype,
                              init=_initializer(self, bias_initializer, "bias_initializer"),
                              role="bias") if use_bias else None

    @classmethod
    def _alias(cls) -> str:
        return "conv"

    def forward(self, x):
        self._input(x, ndim=4, what="input (NCHW)")
        c = x.shape[1]
        if c < 1 or c % self._groups:
            raise ShapeError(f"{self._where()}: the input has {c} channels (shape {tuple(x.shape)}); it needs "
                             f"a positive multiple of groups={self._groups}")
        self._fix_shape(self.weight, (self._channels, c // self._groups) + self._kernel,
                        f"expected {self.weight.shape[1] * self._groups or 'any number of'} input "
                        f"channels (in_channels), got input of shape {tuple(x.shape)}")
        try:
            y = ops.conv2d(x, self._value(self.weight, x), self._value(self.bias, x),
                           self._strides, self._padding, self._dilation, self._groups)
        except ShapeError as exc:
            raise ShapeError(f"{self._where()}: {exc}") from None
        return ops.activation(y, self._act) if self._act else y

    def _extra_repr(self) -> str:
        in_c = self.weight.shape[1] * self._groups or None
        return f"{in_c} -> {self._channels}, kernel_size={self._kernel}, stride={self._strides}"


class _Pool2D(HybridBlock):
    _type = "max"

    @classmethod
    def _alias(cls) -> str:
        return "pool"  # Gluon's name for every pooling layer: pool0, pool1, ...

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, layout="NCHW",
                 count_include_pad=True, **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        _layout(self, layout)
        self._size = checks.int_tuple(pool_size, 2, "pool_size", where)
        self._strides = checks.int_tuple(strides, 2, "strides", where) if strides is not None else self._size
        self._padding = checks.int_tuple(padding, 2, "padding", where, minimum=0)
        if 2 * self._padding[0] > self._size[0] or 2 * self._padding[1] > self._size[1]:
            raise ArgumentError(f"{where}: padding {self._padding} must be at most half of pool_size "
                                f"{self._size}, or some windows would hold only padding; use less padding")
        self._count_include_pad = checks.flag(count_include_pad, "count_include_pad", where)

    def forward(self, x):
        self._input(x, ndim=4, what="input (NCHW)")
        try:
            return ops.pool2d(x, self._type, self._size, self._strides, self._padding, self._count_include_pad)
        except ShapeError as exc:
            raise ShapeError(f"{self._where()}: {exc}") from None

    def _extra_repr(self) -> str:
        return f"size={self._size}, stride={self._strides}, padding={self._padding}"


class MaxPool2D(_Pool2D):
    """Max pooling over NCHW inputs (window ``pool_size``, stride defaults to the window)."""

    _type = "max"


class AvgPool2D(_Pool2D):
    """Average pooling over NCHW inputs; padding counts as zeros unless ``count_include_pad=False``."""

    _type = "avg"


class GlobalAvgPool2D(HybridBlock):
    """Average over the whole spatial extent: ``(N, C, H, W) -> (N, C, 1, 1)``."""

    @classmethod
    def _alias(cls) -> str:
        return "pool"

    def forward(self, x):
        self._input(x, ndim=4, what="input (NCHW)")
        if 0 in x.shape[2:]:
            raise ShapeError(f"{self._where()}: the input of shape {tuple(x.shape)} has no spatial extent")
        return x.mean(axis=(2, 3), keepdims=True)


class GlobalMaxPool2D(HybridBlock):
    """Maximum over the whole spatial extent: ``(N, C, H, W) -> (N, C, 1, 1)``."""

    @classmethod
    def _alias(cls) -> str:
        return "pool"

    def forward(self, x):
        self._input(x, ndim=4, what="input (NCHW)")
        if 0 in x.shape[2:]:
            raise ShapeError(f"{self._where()}: the input of shape {tuple(x.shape)} has no spatial extent")
        return x.max(axis=(2, 3), keepdims=True)
