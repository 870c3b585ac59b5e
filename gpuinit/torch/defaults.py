"""Torch's own default initialization, module by module, as gpuinit initializers.

Each torch module fills its tensors in ``reset_parameters`` (or ``_reset_parameters``); this file
says, for the modules of ``torch.nn`` a model zoo uses, which distribution and bounds that is, in
gpuinit's initializers, so :func:`gpuinit.torch.materialize` draws the same distributions from
gpuinit's streams. Read from torch 2.4 to 2.13's sources (unchanged over that range):

======================================  ==========================================================
module                                  its tensors
======================================  ==========================================================
``Linear``, ``Conv*d``,                 weight ``kaiming_uniform_(a=sqrt(5))``, i.e. U(-b, b) with
``ConvTranspose*d``                     ``b = 1/sqrt(fan_in)``; bias U(-b, b), ``b = 1/sqrt(fan_in)``
                                        of the weight (0 if ``fan_in`` is 0)
``Bilinear``                            weight and bias U(-b, b), ``b = 1/sqrt(in1_features)``
``Embedding``, ``EmbeddingBag``         weight N(0, 1), the ``padding_idx`` row zero
``LayerNorm``, ``GroupNorm``,           weight ones, bias zeros
``RMSNorm``, ``BatchNorm*``,
``InstanceNorm*``, ``SyncBatchNorm``
``BatchNorm*`` running statistics       ``running_mean`` zeros, ``running_var`` ones,
                                        ``num_batches_tracked`` zero (int64)
``MultiheadAttention``                  in-projection weights ``xavier_uniform_``, in-projection
                                        bias and ``out_proj.bias`` zeros, ``bias_k``/``bias_v``
                                        ``xavier_normal_`` (``out_proj.weight`` stays Linear's)
``RNN``, ``LSTM``, ``GRU``, their       every weight and bias U(-b, b), ``b = 1/sqrt(hidden_size)``
cells
``PReLU``                               weight the constant ``init``
``Transformer``                         every parameter of 2 or more dimensions below it
                                        ``xavier_uniform_`` (after its layers' own defaults)
======================================  ==========================================================

A subclass that overrides ``reset_parameters`` is not taken for its base: its own code decides,
so it counts as a module gpuinit does not know.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

from torch import nn

from ..init import (Constant, KaimingUniform, Normal, One, Uniform, XavierNormal, XavierUniform,
                    Zero)

ZERO, ONE = Zero(), One()
KAIMING_A_SQRT5 = KaimingUniform(a=math.sqrt(5))
XAVIER_UNIFORM, XAVIER_NORMAL = XavierUniform(), XavierNormal()
NORMAL_1 = Normal(1.0)


class Default(NamedTuple):
    """How torch initializes one tensor: a gpuinit initializer, or ``"zero"`` for an integer
    tensor torch zeroes; the rows ``zero_rows`` of dimension 0 are then zeroed (``padding_idx``)."""

    initializer: object
    zero_rows: tuple = ()


_KAIMING = Default(KAIMING_A_SQRT5)


def _fan_in(shape) -> int:
    """torch's ``_calculate_fan_in_and_fan_out(weight)[0]``: ``shape[1] * prod(shape[2:])``."""
    return shape[1] * math.prod(shape[2:]) if len(shape) >= 2 else 0


@functools.lru_cache(maxsize=4096)
def _bias_default(weight_shape: tuple) -> "Default":
    """Linear's and the convolutions' bias: U(-b, b), ``b = 1/sqrt(fan_in)`` of the weight (0 if
    ``fan_in`` is 0); one object per weight shape, so equal layers share their fills."""
    fan_in = _fan_in(weight_shape)
    return Default(_uniform(1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0))


@functools.lru_cache(maxsize=1024)
def _uniform(bound: float) -> Uniform:
    """One Uniform per bound, shared: the fills of equal layers are then asked for once."""
    return Uniform(bound)


def _uses(module, cls, method="reset_parameters") -> bool:
    """``module`` is a ``cls`` and initializes as ``cls`` does (no override of ``method``)."""
    return isinstance(module, cls) and getattr(type(module), method, None) is getattr(cls, method)


def _linear_like(module) -> dict:
    params = module._parameters  # not module.weight: __getattr__ costs microseconds per layer
    if params.get("weight") is None:
        # a parametrized weight (weight_norm, spectral_norm): its tensors are no longer torch's
        # default recipe, and the bias's bound comes from it; both are left to rules
        return {}
    if params.get("bias") is None:
        return {"weight": _KAIMING}
    return {"weight": _KAIMING, "bias": _bias_default(tuple(params["weight"].shape))}


def _norm(module) -> dict:
    out = {"weight": Default(ONE), "bias": Default(ZERO)}
    out.update(running_mean=Default(ZERO), running_var=Default(ONE), num_batches_tracked=Default("zero"))
    return out


def _embedding(module) -> dict:
    rows = () if module.padding_idx is None else (int(module.padding_idx),)
    return {"weight": Default(NORMAL_1, rows)}


def _mha(module) -> dict:
    out = {name: Default(XAVIER_UNIFORM) for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight",
                                                      "v_proj_weight")}
    out.update(in_proj_bias=Default(ZERO), bias_k=Default(XAVIER_NORMAL), bias_v=Default(XAVIER_NORMAL))
    return out


def _recurrent(module) -> dict:
    bound = _uniform(1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0)
    return {name: Default(bound) for name, _ in module.named_parameters(recurse=False)}


def _bilinear(module) -> dict:
    bound = _uniform(1.0 / math.sqrt(module.weight.shape[1]))
    return {"weight": Default(bound), "bias": Default(bound)}


# (class, the method whose code the entry mirrors, defaults of the module's own tensors)
_TABLE = (
    (nn.Linear, "reset_parameters", _linear_like),
    (nn.modules.conv._ConvNd, "reset_parameters", _linear_like),
    (nn.Bilinear, "reset_parameters", _bilinear),
    (nn.Embedding, "reset_parameters", _embedding),
    (nn.EmbeddingBag, "reset_parameters", _embedding),
    (nn.modules.batchnorm._NormBase, "reset_parameters", _norm),
    (nn.LayerNorm, "reset_parameters", _norm),
    (nn.GroupNorm, "reset_parameters", _norm),
    (nn.MultiheadAttention, "_reset_parameters", _mha),
    (nn.RNNBase, "reset_parameters", _recurrent),
    (nn.modules.rnn.RNNCellBase, "reset_parameters", _recurrent),
    (nn.PReLU, "reset_parameters", lambda m: {"weight": Default(Constant(float(m.init)))}),
)
if hasattr(nn, "RMSNorm"):  # torch >= 2.4
    _TABLE += ((nn.RMSNorm, "reset_parameters", _norm),)


def own_defaults(module) -> dict | None:
    """``{local name: Default}`` for the tensors ``module`` itself holds, or None if gpuinit does
    not know how the module initializes them."""
    for cls, method, rule in _TABLE:
        if _uses(module, cls, method):
            return rule(module)
    return None


def overrides(module) -> dict:
    """Defaults a container sets for tensors below it, after its children's own
    (``{name relative to module: Default}``): MultiheadAttention's ``out_proj.bias``, and every
    matrix of a ``Transformer``."""
    if _uses(module, nn.MultiheadAttention, "_reset_parameters"):
        if module.in_proj_bias is not None and module.out_proj.bias is not None:
            return {"out_proj.bias": Default(ZERO)}
        return {}
    if _uses(module, nn.Transformer, "_reset_parameters"):
        return {name: Default(XAVIER_UNIFORM) for name, p in module.named_parameters() if p.dim() > 1}
    return {}


__all__ = ["Default", "overrides", "own_defaults"]
