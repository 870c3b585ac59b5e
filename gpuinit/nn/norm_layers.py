"""Normalization layers: BatchNorm (inference statistics), LayerNorm, RMSNorm."""

from __future__ import annotations

from .. import ops
from ..parameter import Parameter
from .block import Block


class _Norm(Block):
    """Shared shape logic: per-channel parameters sized from the input's ``axis``."""

    _axis = -1

    def _channel_params(self, x):
        c = x.shape[self._axis]
        for p in self._reg_params.values():
            self._fix_shape(p, (c,), f"expected {p.shape[0] or 'any number of'} channels on axis "
                                     f"{self._axis}, got input of shape {tuple(x.shape)}")
        return {name: self._value(p, x) for name, p in self._reg_params.items()}

    def _extra_repr(self) -> str:
        first = next(iter(self._reg_params.values()))
        return f"axis={self._axis}, in_channels={first.shape[0] or None}"


class BatchNorm(_Norm):
    """Batch normalization with running statistics (inference).

    Args:
        axis: the channel axis (1 for NCHW).
        momentum: kept for Gluon's signature (no training here).
        epsilon: added to the variance.
        center: learn a shift ``beta``; scale: learn a scale ``gamma``.
        in_channels: channels; 0 (unknown) defers initialization to the first forward.
    """

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", running_mean_initializer="zeros",
                 running_variance_initializer="ones", in_channels=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self._axis, self._eps = axis, epsilon
        shape = (in_channels,)
        self.gamma = Parameter("gamma", shape, dtype, gamma_initializer if scale else "ones", role="gamma")
        self.beta = Parameter("beta", shape, dtype, beta_initializer if center else "zeros", role="beta")
        self.running_mean = Parameter("running_mean", shape, dtype, running_mean_initializer, role="running_mean")
        self.running_var = Parameter("running_var", shape, dtype, running_variance_initializer, role="running_var")

    @classmethod
    def _alias(cls) -> str:
        return "batchnorm"

    def forward(self, x):
        p = self._channel_params(x)
        return ops.batch_norm(x, p["gamma"], p["beta"], p["running_mean"], p["running_var"],
                              self._eps, self._axis % x.ndim)


class LayerNorm(_Norm):
    """Layer normalization over the last axis.

    Args:
        axis: must be -1 (the last axis).
        epsilon: added to the variance.
        center, scale: whether to learn ``beta`` and ``gamma``.
        in_channels: size of the last axis; 0 defers initialization to the first forward.
    """

    def __init__(self, axis=-1, epsilon=1e-5, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", in_channels=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"LayerNorm normalizes the last axis only (axis=-1), got axis={axis!r}")
        self._eps = epsilon
        if scale:
            self.gamma = Parameter("gamma", (in_channels,), dtype, gamma_initializer, role="gamma")
        if center:
            self.beta = Parameter("beta", (in_channels,), dtype, beta_initializer, role="beta")

    @classmethod
    def _alias(cls) -> str:
        return "layernorm"

    def forward(self, x):
        p = self._channel_params(x)
        return ops.layer_norm(x, p.get("gamma"), p.get("beta"), self._eps)


class RMSNorm(_Norm):
    """Root-mean-square normalization over the last axis, with a learned scale (LLaMA's).

    Args:
        epsilon: added to the mean square.
        in_channels: size of the last axis; 0 defers initialization to the first forward.
    """

    def __init__(self, epsilon=1e-6, gamma_initializer="ones", in_channels=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self._eps = epsilon
        self.gamma = Parameter("gamma", (in_channels,), dtype, gamma_initializer, role="gamma")

    @classmethod
    def _alias(cls) -> str:
        return "rmsnorm"

    def forward(self, x):
        return ops.rms_norm(x, self._channel_params(x)["gamma"], self._eps)
