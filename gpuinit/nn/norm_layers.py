"""Normalization layers: BatchNorm (inference statistics), LayerNorm, RMSNorm, InstanceNorm, GroupNorm."""

from __future__ import annotations

from .. import checks, ops
from ..errors import ArgumentError, ShapeError
from ..parameter import Parameter
from .basic_layers import _initializer
from .block import HybridBlock


class _Norm(HybridBlock):
    """Shared shape logic: per-channel parameters sized from the input's ``axis``."""

    _axis = -1

    def _check_common(self, epsilon, in_channels) -> tuple[float, int]:
        where = self._where()
        return (checks.real(epsilon, "epsilon", where, above=0, hint="pass a small positive number such as 1e-5"),
                checks.non_negative_int(in_channels, "in_channels", where,
                                        hint="pass the channel count, or 0 to infer it"))

    def _param(self, name, in_channels, dtype, initializer, role):
        return Parameter(name, (in_channels,), dtype, _initializer(self, initializer, f"{name}_initializer"),
                         role=role, grad_req="null" if role.startswith("running") else "write")  # as Gluon

    def _channel_params(self, x):
        self._input(x)
        axis = self._axis
        if not -x.ndim <= axis < x.ndim:
            raise ShapeError(f"{self._where()}: axis {axis} does not exist in an input of shape "
                             f"{tuple(x.shape)}; pass an input with that axis, or choose another axis")
        c = x.shape[axis]
        if c < 1:
            raise ShapeError(f"{self._where()}: the input of shape {tuple(x.shape)} has no channels on axis "
                             f"{axis}; pass an input with at least one channel there")
        for p in self._reg_params.values():
            self._fix_shape(p, (c,), f"expected {p.shape[0] or 'any number of'} channels on axis "
                                     f"{axis}, got input of shape {tuple(x.shape)}")
        return {name: self._value(p, x) for name, p in self._reg_params.items()}

    def _extra_repr(self) -> str:
        first = next(iter(self._reg_params.values()), None)
        channels = first.shape[0] if first is not None else 0
        return f"axis={self._axis}, in_channels={channels or None}"


class BatchNorm(_Norm):
    """Batch normalization with running statistics (inference).

    Args:
        axis: the channel axis (1 for NCHW).
        momentum: kept for Gluon's signature (no training here); in ``[0, 1]``.
        epsilon: added to the variance; positive.
        center: learn a shift ``beta``; scale: learn a scale ``gamma``.
        in_channels: channels; 0 (unknown) defers initialization to the first forward.
    """

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", running_mean_initializer="zeros",
                 running_variance_initializer="ones", in_channels=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        self._axis = checks.integer(axis, "axis", where)
        self._momentum = checks.real(momentum, "momentum", where, minimum=0, maximum=1)
        self._eps, in_channels = self._check_common(epsilon, in_channels)
        scale, center = checks.flag(scale, "scale", where), checks.flag(center, "center", where)
        self.gamma = self._param("gamma", in_channels, dtype, gamma_initializer if scale else "ones", "gamma")
        self.beta = self._param("beta", in_channels, dtype, beta_initializer if center else "zeros", "beta")
        self.running_mean = self._param("running_mean", in_channels, dtype, running_mean_initializer,
                                        "running_mean")
        self.running_var = self._param("running_var", in_channels, dtype, running_variance_initializer,
                                       "running_var")

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
        epsilon: added to the variance; positive.
        center, scale: whether to learn ``beta`` and ``gamma``.
        in_channels: size of the last axis; 0 defers initialization to the first forward.
    """

    def __init__(self, axis=-1, epsilon=1e-5, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", in_channels=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        if checks.integer(axis, "axis", where) != -1:
            raise ArgumentError(f"{where}: LayerNorm normalizes the last axis only (axis=-1), got axis={axis!r}; "
                                "move the axis last with transpose")
        self._eps, in_channels = self._check_common(epsilon, in_channels)
        if checks.flag(scale, "scale", where):
            self.gamma = self._param("gamma", in_channels, dtype, gamma_initializer, "gamma")
        if checks.flag(center, "center", where):
            self.beta = self._param("beta", in_channels, dtype, beta_initializer, "beta")

    @classmethod
    def _alias(cls) -> str:
        return "layernorm"

    def forward(self, x):
        p = self._channel_params(x)
        return ops.layer_norm(x, p.get("gamma"), p.get("beta"), self._eps)


class RMSNorm(_Norm):
    """Root-mean-square normalization over the last axis, with a learned scale (LLaMA's).

    Args:
        epsilon: added to the mean square; positive.
        in_channels: size of the last axis; 0 defers initialization to the first forward.
    """

    def __init__(self, epsilon=1e-6, gamma_initializer="ones", in_channels=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self._eps, in_channels = self._check_common(epsilon, in_channels)
        self.gamma = self._param("gamma", in_channels, dtype, gamma_initializer, "gamma")

    @classmethod
    def _alias(cls) -> str:
        return "rmsnorm"

    def forward(self, x):
        return ops.rms_norm(x, self._channel_params(x)["gamma"], self._eps)


class InstanceNorm(_Norm):
    """Instance normalization: each sample's channel normalized over its spatial axes, then scaled
    and shifted per channel (Ulyanov et al., 2016).

    Args:
        axis: the channel axis (1 for NCHW).
        epsilon: added to the variance; positive.
        center: learn the shift ``beta``; scale: learn the scale ``gamma`` (off by default, as in
            Gluon; ``gamma`` still exists, filled by ``gamma_initializer``).
        in_channels: channels; 0 (unknown) defers initialization to the first forward.
    """

    def __init__(self, axis=1, epsilon=1e-5, center=True, scale=False, beta_initializer="zeros",
                 gamma_initializer="ones", in_channels=0, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        self._axis = checks.integer(axis, "axis", where)
        self._eps, in_channels = self._check_common(epsilon, in_channels)
        scale, center = checks.flag(scale, "scale", where), checks.flag(center, "center", where)
        self.gamma = self._param("gamma", in_channels, dtype, gamma_initializer, "gamma")
        self.beta = self._param("beta", in_channels, dtype, beta_initializer, "beta")
        self.gamma.grad_req = "write" if scale else "null"
        self.beta.grad_req = "write" if center else "null"

    @classmethod
    def _alias(cls) -> str:
        return "instancenorm"

    def forward(self, x):
        self._input(x, min_ndim=3)
        p = self._channel_params(x)
        axis = self._axis % x.ndim
        if axis == 1:
            return ops.instance_norm(x, p["gamma"], p["beta"], self._eps)
        return ops.instance_norm(x.swapaxes(1, axis), p["gamma"], p["beta"], self._eps).swapaxes(1, axis)


class GroupNorm(_Norm):
    """Group normalization: the channels (axis 1) split into ``num_groups`` groups, each sample's
    group normalized over its channels and spatial axes, then scaled and shifted per group, as
    Gluon 1.x's GroupNorm (``gamma`` and ``beta`` have shape ``(num_groups,)``; Wu & He, 2018).

    Args:
        num_groups: the number of groups; must divide the input's channels.
        epsilon: added to the variance; positive.
        center, scale: whether ``beta`` and ``gamma`` are trained (they exist either way).
    """

    def __init__(self, num_groups=1, epsilon=1e-5, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", dtype="float32", **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        self._groups = checks.positive_int(num_groups, "num_groups", where)
        self._eps = checks.real(epsilon, "epsilon", where, above=0, hint="pass a small positive number such as 1e-5")
        scale, center = checks.flag(scale, "scale", where), checks.flag(center, "center", where)
        self.gamma = Parameter("gamma", (self._groups,), dtype, _initializer(self, gamma_initializer,
                                                                            "gamma_initializer"), role="gamma",
                               grad_req="write" if scale else "null")
        self.beta = Parameter("beta", (self._groups,), dtype, _initializer(self, beta_initializer,
                                                                          "beta_initializer"), role="beta",
                              grad_req="write" if center else "null")

    @classmethod
    def _alias(cls) -> str:
        return "groupnorm"

    def forward(self, x):
        self._input(x, min_ndim=2)
        try:
            return ops.group_norm(x, self._value(self.gamma, x), self._value(self.beta, x), self._groups, self._eps)
        except ShapeError as exc:
            raise ShapeError(f"{self._where()}: {exc}") from None

    def _extra_repr(self) -> str:
        return f"num_groups={self._groups}"
