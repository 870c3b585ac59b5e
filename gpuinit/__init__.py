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

__version__ = "0.1.0"

__all__ = ["ArgumentError", "ArgumentTypeError", "DeferredInitializationError", "Device", "DeviceError",
           "GpuInitError", "InitializerError", "OutOfMemoryError", "Parameter", "ParameterDict", "PlanError",
           "ShapeError", "UninitializedParameterError", "as_device", "cpu", "default_device",
           "gpu", "init", "nd", "nn", "plan", "Plan", "seed", "shard"]
