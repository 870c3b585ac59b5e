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
- ``meta``: shape-only arrays; ``ops``: the layers' array operations; ``nn``: layers and
  containers; ``nd``: arrays and operations; ``planning``: memory plans; ``sharding``: a rank's
  slice of every parameter; ``models``: the model zoo; ``report``: the memory report;
- ``torch`` (optional, ``pip install "gpuinit[torch]"``, imported only by ``import gpuinit.torch``):
  the PyTorch bridge, materializing meta-built torch modules with these fills.
- ``jax``: the JAX and Flax bridge, imported only as ``gpuinit.jax`` (it needs JAX).
"""

from . import init, nd, nn
from .device import Device, as_device, cpu, default_device, gpu
from .errors import (ArgumentError, ArgumentTypeError, DeferredInitializationError, DeviceError,
                     GpuInitError, InitializerError, OutOfMemoryError, PlanError, ShapeError,
                     UninitializedParameterError)
from .parameter import Parameter, ParameterDict
from .planning import Plan, plan
from .sharding import shard
from .streams import seed

# MXNet's namespaces, so Gluon 1.x code runs with ``import gpuinit as mx`` (issue 9, surface)
from . import base, context, gluon  # noqa: E402
from .base import MXNetError  # noqa: E402
from .nd import random  # noqa: E402  (mx.random.seed, mx.random.uniform, ...)

ndarray, initializer = nd, init  # MXNet's long names: mx.ndarray.empty, mx.initializer.Constant

__version__ = "0.1.0"

__all__ = ["ArgumentError", "ArgumentTypeError", "DeferredInitializationError", "Device", "DeviceError",
           "GpuInitError", "InitializerError", "OutOfMemoryError", "Parameter", "ParameterDict", "PlanError",
           "ShapeError", "UninitializedParameterError", "as_device", "cpu", "default_device",
           "gpu", "init", "nd", "nn", "plan", "Plan", "seed", "shard"]

# Checkpoints (gpuinit.checkpoint: Block.save_parameters/load_parameters, nd.save/load).
from . import checkpoint  # noqa: E402
from .errors import CheckpointError, CheckpointNotFoundError  # noqa: E402

__all__ += ["CheckpointError", "CheckpointNotFoundError", "checkpoint"]
