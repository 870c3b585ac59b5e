"""Convolution and pooling layers over 1, 2 or 3 spatial axes, and ReflectionPad2D, as Gluon 1.x has them.

Layouts: channels first (``NCW``, ``NCHW``, ``NCDHW``, the default) or channels last (``NWC``,
``NHWC``, ``NDHWC``). Parameter shapes are MXNet's: a convolution's weight is
``(channels, in_channels/groups, *kernel)``, channels last ``(channels, *kernel,
in_channels/groups)``; a transposed convolution's is ``(in_channels, channels/groups, *kernel)``.
Channels-last inputs are computed by transposing to channels first and back.
"""

from __future__ import annotations

from .. import checks, ops
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..parameter import Parameter
from .basic_layers import _initializer
from .block import HybridBlock

_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


def _layout(block, layout, k: int, channels_last: bool = True) -> bool:
    """Whether ``layout`` puts channels first; refuses layouts of another rank."""
    allowed = (_FIRST[k], _LAST[k]) if channels_last else (_FIRST[k],)
    if layout not in allowed:
        fix = (f"transpose the input to {_FIRST[k]} and pass layout={_FIRST[k]!r}" if not channels_last
               else f"use one of {allowed!r}")
        raise ArgumentError(f"{block._where()}: layout must be {' or '.join(map(repr, allowed))} for "
                            f"{k}-D {'pooling' if 'Pool' in type(block).__name__ else 'convolution'}, got "
                            f"{layout!r}; {fix}")
    return layout == _FIRST[k]


def _to_first(x, k):
    return x.transpose((0, k + 1) + tuple(range(1, k + 1)))


def _to_last(x, k):
    return x.transpose((0,) + tuple(range(2, k + 2)) + (1,))


class _Conv(HybridBlock):
    """A convolution over ``_dims`` spatial axes (``_transpose``: a transposed convolution)."""

    _dims = 2
    _transpose = False

    def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1, layout=None,
                 in_channels=0, activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", output_padding=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        k = self._dims
        self._first = _layout(self, _FIRST[k] if layout is None else layout, k,
                              channels_last=not self._transpose)
        self._layout_name = _FIRST[k] if layout is None else layout
        channels = checks.positive_int(channels, "channels", where,
                                       hint=f"pass the output channels, e.g. {type(self).__name__}(16, 3)")
        kernel = checks.int_tuple(kernel_size, k, "kernel_size", where)
        self._strides = checks.int_tuple(strides, k, "strides", where)
        self._padding = checks.int_tuple(padding, k, "padding", where, minimum=0)
        self._dilation = checks.int_tuple(dilation, k, "dilation", where)
        self._output_padding = checks.int_tuple(output_padding, k, "output_padding", where, minimum=0)
        if self._transpose:
            for a in range(k):
                if self._output_padding[a] >= max(self._strides[a], self._dilation[a]):
                    raise ArgumentError(f"{where}: output_padding {self._output_padding} must be smaller than "
                                        f"strides {self._strides} or dilation {self._dilation} on each axis; use "
                                        "a smaller output_padding")
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
        self.weight = Parameter("weight", shape=self._weight_shape(in_channels), dtype=dtype,
                                init=_initializer(self, weight_initializer, "weight_initializer"), role="weight")
        self.bias = Parameter("bias", shape=(channels,), dtype=dtype,
                              init=_initializer(self, bias_initializer, "bias_initializer"),
                              role="bias") if use_bias else None

    @classmethod
    def _alias(cls) -> str:
        return "conv"

    def _weight_shape(self, in_channels: int) -> tuple:
        if self._transpose:
            return (in_channels, self._channels // self._groups) + self._kernel
        if self._first:
            return (self._channels, in_channels // self._groups) + self._kernel
        return (self._channels,) + self._kernel + (in_channels // self._groups,)

    @property
    def _in_channels(self) -> int:
        shape = self.weight.shape
        if self._transpose:
            return shape[0]
        return (shape[1] if self._first else shape[-1]) * self._groups

    def forward(self, x):
        k = self._dims
        self._input(x, ndim=k + 2, what=f"input ({self._layout_name})")
        c = x.shape[1] if self._first else x.shape[-1]
        if c < 1 or c % self._groups:
            raise ShapeError(f"{self._where()}: the input has {c} channels (shape {tuple(x.shape)}); it needs "
                             f"a positive multiple of groups={self._groups}")
        self._fix_shape(self.weight, self._weight_shape(c),
                        f"expected {self._in_channels or 'any number of'} input channels (in_channels), got "
                        f"input of shape {tuple(x.shape)}")
        weight = self._value(self.weight, x)
        if not self._first:
            x, weight = _to_first(x, k), _to_first(weight, k)
        try:
            if self._transpose:
                y = ops.conv_transpose(x, weight, self._value(self.bias, x), self._strides, self._padding,
                                       self._dilation, self._groups, self._output_padding, k=k,
                                       where=type(self).__name__)
            else:
                y = ops.conv(x, weight, self._value(self.bias, x), self._strides, self._padding, self._dilation,
                             self._groups, k=k, where=type(self).__name__)
        except ShapeError as exc:
            raise ShapeError(f"{self._where()}: {exc}") from None
        if not self._first:
            y = _to_last(y, k)
        return ops.activation(y, self._act) if self._act else y

    def _extra_repr(self) -> str:
        in_c = self._in_channels or None
        text = f"{in_c} -> {self._channels}, kernel_size={self._kernel}, stride={self._strides}"
        if any(self._padding):
            text += f", padding={self._padding}"
        if self._dilation != (1,) * self._dims:
            text += f", dilation={self._dilation}"
        if self._groups != 1:
            text += f", groups={self._groups}"
        if not self._first:
            text += f", layout={self._layout_name}"
        return text


_CONV_DOC = """{what} over {layouts} inputs.

    Args:
        channels: output channels.
        kernel_size: int or a tuple of {k}.
        strides, dilation: positive int or tuple of {k}; padding: non-negative int or tuple of {k}.{extra}
        groups: split input and output channels into this many groups (must divide both).
        layout: {layout_doc}
        in_channels: input channels; 0 (unknown) defers initialization to the first forward.
        activation: name of an activation applied to the output, or None.
        use_bias: whether to add a bias.
        weight_initializer, bias_initializer: the parameters' own initializers.

    The weight has shape {wshape}.

    Raises:
        ArgumentError: an argument the layer cannot take; the message names the layer.
    """


def _conv_class(name, k, transpose):
    first, last = _FIRST[k], _LAST[k]
    if transpose:
        layout_doc = f"{first!r} (the only layout supported for transposed convolutions)"
        wshape = "``(in_channels, channels/groups, *kernel)``"
        extra = ("\n        output_padding: extra length added at the end of each spatial axis of the output "
                 "(smaller than the stride or the dilation).")
    else:
        layout_doc = f"{first!r} (default) or {last!r}"
        wshape = (f"``(channels, in_channels/groups, *kernel)`` ({first}) or ``(channels, *kernel, "
                  f"in_channels/groups)`` ({last})")
        extra = ""

    def __init__(self, channels, kernel_size, strides=1, padding=0, *args, layout=first, **kwargs):
        if transpose:
            # Gluon's order: (channels, kernel_size, strides, padding, output_padding, dilation, groups, ...)
            names = ("output_padding", "dilation", "groups")
        else:
            names = ("dilation", "groups")
        if len(args) > len(names):
            raise ArgumentError(f"{name}: too many positional arguments; pass {names[-1]} and later ones by name")
        kwargs.update(zip(names, args))
        _Conv.__init__(self, channels, kernel_size, strides, padding, layout=layout, **kwargs)

    what = f"{k}-D transposed convolution" if transpose else f"{k}-D convolution"
    doc = _CONV_DOC.format(what=what, layouts=first if transpose else f"{first} or {last}", k=k, extra=extra,
                           layout_doc=layout_doc, wshape=wshape)
    return type(name, (_Conv,), {"__init__": __init__, "__doc__": doc, "_dims": k, "_transpose": transpose,
                                 "__module__": __name__, "__qualname__": name})


Conv1D = _conv_class("Conv1D", 1, False)
Conv2D = _conv_class("Conv2D", 2, False)
Conv3D = _conv_class("Conv3D", 3, False)
Conv1DTranspose = _conv_class("Conv1DTranspose", 1, True)
Conv2DTranspose = _conv_class("Conv2DTranspose", 2, True)
Conv3DTranspose = _conv_class("Conv3DTranspose", 3, True)


class _Pooling(HybridBlock):
    """What windowed and global pooling share: ``_type`` (``'max'`` or ``'avg'``), ``_dims``
    spatial axes, and the layout (channels first or last)."""

    _type = "max"
    _dims = 2

    def __init__(self, layout=None, **kwargs):
        super().__init__(**kwargs)
        k = self._dims
        self._layout_name = _FIRST[k] if layout is None else layout
        self._first = _layout(self, self._layout_name, k)

    @classmethod
    def _alias(cls) -> str:
        return "pool"

    def _checked_input(self, x):
        self._input(x, ndim=self._dims + 2, what=f"input ({self._layout_name})")


class _Pool(_Pooling):
    def __init__(self, pool_size=2, strides=None, padding=0, layout=None, ceil_mode=False,
                 count_include_pad=True, **kwargs):
        super().__init__(layout, **kwargs)
        where = self._where()
        k = self._dims
        self._size = checks.int_tuple(pool_size, k, "pool_size", where)
        self._strides = checks.int_tuple(strides, k, "strides", where) if strides is not None else self._size
        self._padding = checks.int_tuple(padding, k, "padding", where, minimum=0)
        if any(p >= s for p, s in zip(self._padding, self._size)):
            raise ArgumentError(f"{where}: padding {self._padding} must be smaller than pool_size {self._size} on "
                                "each axis, or some windows would hold only padding; use less padding")
        self._ceil_mode = checks.flag(ceil_mode, "ceil_mode", where)
        self._count_include_pad = checks.flag(count_include_pad, "count_include_pad", where)

    def forward(self, x):
        k = self._dims
        self._checked_input(x)
        if not self._first:
            x = _to_first(x, k)
        try:
            y = ops.pool(x, self._type, self._size, self._strides, self._padding, self._count_include_pad,
                         self._ceil_mode, k=k, where=type(self).__name__)
        except ShapeError as exc:
            raise ShapeError(f"{self._where()}: {exc}") from None
        return y if self._first else _to_last(y, k)

    def _extra_repr(self) -> str:
        text = f"size={self._size}, stride={self._strides}, padding={self._padding}, ceil_mode={self._ceil_mode}"
        if not self._first:
            text += f", layout={self._layout_name}"
        return text


class _GlobalPool(_Pooling):
    def forward(self, x):
        k = self._dims
        self._checked_input(x)
        axes = tuple(range(2, k + 2)) if self._first else tuple(range(1, k + 1))
        if any(x.shape[a] == 0 for a in axes):
            raise ShapeError(f"{self._where()}: the input of shape {tuple(x.shape)} has no spatial extent")
        return ops.global_pool(x, self._type, axes)

    def _extra_repr(self) -> str:
        return "" if self._first else f"layout={self._layout_name}"


def _pool_class(name, k, kind, base):
    first, last = _FIRST[k], _LAST[k]
    if base is _Pool:
        what = "Max" if kind == "max" else "Average"
        doc = (f"{what} pooling over {k}-D {first} (default) or {last} inputs.\n\n"
               "    Args:\n"
               f"        pool_size: the window, int or tuple of {k} (default 2).\n"
               "        strides: the step between windows (default: the window).\n"
               "        padding: added on both sides of each spatial axis, smaller than the window.\n"
               f"        layout: {first!r} or {last!r}.\n"
               "        ceil_mode: keep a last, partial window (MXNet's 'full' convention).\n")
        if kind == "avg":
            doc += ("        count_include_pad: whether the padding counts in the average (as zeros).\n")

        if kind == "max":  # Gluon's positional orders differ between max and average pooling
            def __init__(self, pool_size=2, strides=None, padding=0, layout=first, ceil_mode=False, **kwargs):
                if "count_include_pad" in kwargs:
                    raise ArgumentTypeError(f"{name}: count_include_pad applies to average pooling only; "
                                            "remove it, or use AvgPool")
                _Pool.__init__(self, pool_size, strides, padding, layout, ceil_mode, **kwargs)
        else:
            def __init__(self, pool_size=2, strides=None, padding=0, ceil_mode=False, layout=first,
                         count_include_pad=True, **kwargs):
                _Pool.__init__(self, pool_size, strides, padding, layout, ceil_mode, count_include_pad, **kwargs)
    else:
        doc = (f"{'Maximum' if kind == 'max' else 'Average'} over the whole spatial extent of {first} "
               f"(default) or {last} inputs; each spatial axis becomes 1.")

        def __init__(self, layout=first, **kwargs):
            _GlobalPool.__init__(self, layout, **kwargs)
    return type(name, (base,), {"__init__": __init__, "__doc__": doc, "_dims": k, "_type": kind,
                                "__module__": __name__, "__qualname__": name})


MaxPool1D = _pool_class("MaxPool1D", 1, "max", _Pool)
MaxPool2D = _pool_class("MaxPool2D", 2, "max", _Pool)
MaxPool3D = _pool_class("MaxPool3D", 3, "max", _Pool)
AvgPool1D = _pool_class("AvgPool1D", 1, "avg", _Pool)
AvgPool2D = _pool_class("AvgPool2D", 2, "avg", _Pool)
AvgPool3D = _pool_class("AvgPool3D", 3, "avg", _Pool)
GlobalMaxPool1D = _pool_class("GlobalMaxPool1D", 1, "max", _GlobalPool)
GlobalMaxPool2D = _pool_class("GlobalMaxPool2D", 2, "max", _GlobalPool)
GlobalMaxPool3D = _pool_class("GlobalMaxPool3D", 3, "max", _GlobalPool)
GlobalAvgPool1D = _pool_class("GlobalAvgPool1D", 1, "avg", _GlobalPool)
GlobalAvgPool2D = _pool_class("GlobalAvgPool2D", 2, "avg", _GlobalPool)
GlobalAvgPool3D = _pool_class("GlobalAvgPool3D", 3, "avg", _GlobalPool)


class ReflectionPad2D(HybridBlock):
    """Pad the last two axes of NCHW inputs by reflecting them at their edges.

    Args:
        padding: an integer, added on every side of the two spatial axes; or eight integers,
            ``(before, after)`` for each of the four axes (Gluon's form, e.g.
            ``(0, 0, 0, 0, 1, 1, 2, 2)``).
    """

    def __init__(self, padding=0, **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        if isinstance(padding, (list, tuple)):
            pads = checks.int_tuple(padding, 8, "padding", where, minimum=0)
        else:
            p = checks.non_negative_int(padding, "padding", where)
            pads = (0, 0, 0, 0, p, p, p, p)
        self._pad_width = tuple(zip(pads[0::2], pads[1::2]))

    @classmethod
    def _alias(cls) -> str:
        return "reflectionpad2d"

    def forward(self, x):
        self._input(x, ndim=4, what="input (NCHW)")
        try:
            return ops.reflection_pad(x, self._pad_width)
        except ShapeError as exc:
            raise ShapeError(f"{self._where()}: {exc}") from None

    def _extra_repr(self) -> str:
        return f"padding={self._pad_width}"
