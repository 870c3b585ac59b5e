"""gpuinit: neural-network parameters initialized where they live, once their shapes are known.

Modules, one job each:

- ``backend``: the only gateway to CuPy; ``device``: cpu()/gpu(i) and the default device;
  ``dtypes``: parameter dtypes (bfloat16 through ml_dtypes);
- ``streams``: the random streams' specification and NumPy reference; ``transforms``: their
  log/sin/cos/ndtri; ``seedseq``: their keys in bulk; ``kernels``: the CUDA sources and their
  loader, which reproduce the streams on the GPU;
- ``init``: initializers; ``parameter``: Parameter and ParameterDict; ``store``: allocation and
  filling, all-or-nothing; ``meta``/``ops``: shape-only arrays and the layers' array operations;
- ``nn``: layers and containers; ``nd``: arrays and operations; ``planning``: memory plans;
  ``sharding``: a rank's slice of every parameter, equal to that slice of the whole;
- ``memory``: host and device memory readings;
  ``models``: the built-in model zoo; ``report``: the memory report.
"""

from . import init, nd, nn
from .device import Device, as_device, cpu, default_device, gpu
from .errors import (DeferredInitializationError, DeviceError, GpuInitError, InitializerError,
                     OutOfMemoryError, PlanError, ShapeError, UninitializedParameterError)
from .parameter import Parameter, ParameterDict
from .planning import Plan, plan
from .sharding import shard
from .streams import seed

__version__ = "0.1.0"

__all__ = ["DeferredInitializationError", "Device", "DeviceError", "GpuInitError",
           "InitializerError", "OutOfMemoryError", "Parameter", "ParameterDict", "PlanError",
           "ShapeError", "UninitializedParameterError", "as_device", "cpu", "default_device",
           "gpu", "init", "nd", "nn", "plan", "Plan", "seed", "shard"]
