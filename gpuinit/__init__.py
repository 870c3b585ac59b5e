"""gpuinit: neural-network parameters initialized where they live, once their shapes are known.

Modules, one job each, from the bottom up:

- ``errors``: the error hierarchy; ``checks``: argument checks with one wording;
- ``backend``: the only gateway to CuPy; ``device``: cpu()/gpu(i) and the default device;
  ``dtypes``: parameter dtypes (bfloat16 through ml_dtypes); ``memory``: memory readings;
- ``streams``: the random streams (contract, keys, transforms, NumPy reference, CPU driver);
  ``kernels``: the CUDA sources and their loader, the same streams on the GPU; ``engine``: runs
  fills on whichever device; ``draws``: sequential draws for custom initializers and ``nd.random``;
- ``init``: initializers; ``parameter``: Parameter and ParameterDict (state and transitions);
  ``store``: layout, fit check, allocation and accounting of arenas; ``lifecycle``: every
  parameter change (initialize, shape inference, materialization, shards, set_data), all or
  nothing, thread-safe;
- ``meta``: shape-only arrays; ``fluent``: the array methods they share with ``arrays``
  (``NDArray``, NumPy arrays with MXNet's methods); ``ops``: the layers' array operations; ``nn``:
  layers and containers; ``nd``: arrays and operations; ``gluon``, ``base``, ``context``: MXNet's
  names; ``planning``: memory plans; ``sharding``: a rank's slice of every parameter, and element
  ranges or blocks of one filled into caller-owned memory; ``checkpoint``: safetensors files;
  ``models``: the model zoo; ``report``: the memory report;
- the bridges, each imported only on its own (``import gpuinit.torch``, ``import gpuinit.jax``)
  and needing its framework (``pip install "gpuinit[torch]"`` / ``"gpuinit[jax]"``): ``torch``
  materializes meta-built torch modules (FSDP2 shards included), ``jax`` makes JAX/Flax parameter
  trees (sharded on meshes), both with these fills.
"""

from . import base, checkpoint, context, gluon, init, nd, nn
from .base import MXNetError
from .device import Device, as_device, cpu, default_device, gpu
from .errors import (ArgumentError, ArgumentTypeError, CheckpointError, CheckpointNotFoundError,
                     DeferredInitializationError, DeviceError, GpuInitError, InitializerError,
                     OutOfMemoryError, PlanError, ShapeError, UninitializedParameterError)
from .nd import random  # MXNet's mx.random (seed, uniform, normal)
from .parameter import Parameter, ParameterDict
from .planning import Plan, plan
from .sharding import shard
from .streams import seed

# MXNet's long names, so Gluon 1.x code runs with ``import gpuinit as mx``: mx.ndarray.empty,
# mx.initializer.Constant.
ndarray, initializer = nd, init

__version__ = "0.1.0"

__all__ = ["ArgumentError", "ArgumentTypeError", "CheckpointError", "CheckpointNotFoundError",
           "DeferredInitializationError", "Device", "DeviceError", "GpuInitError", "InitializerError",
           "OutOfMemoryError", "Parameter", "ParameterDict", "PlanError", "ShapeError",
           "UninitializedParameterError", "as_device", "checkpoint", "cpu", "default_device", "gpu", "init",
           "nd", "nn", "plan", "Plan", "seed", "shard"]
