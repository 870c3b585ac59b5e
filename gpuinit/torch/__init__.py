"""The PyTorch bridge: materialize meta-built torch models with gpuinit's fills.

``pip install "gpuinit[torch]"``. One job per module:

- ``defaults``: torch's own per-module default distributions, as gpuinit initializers;
- ``slots``: a module's tensors, their names (tied ones once), and how each is filled
  (rules, defaults, modules gpuinit does not know); all checks, nothing changed;
- ``materialize``: :func:`materialize` (one arena per device from torch's allocator, zero copies)
  and :func:`fill_` (in place, into storage someone else owns);
- ``fsdp``: FSDP2/DTensor ``Shard(0)`` shards, each rank filling its own rows;
- ``plan``: :func:`plan`, bytes and training memory before anything is allocated.

The numbers come from gpuinit's streams keyed by each tensor's name in ``named_parameters()`` /
``named_buffers()``: the same bits on the CPU and CUDA, in any process, for any sharding.

Example:
    >>> import torch, gpuinit.torch
    >>> with torch.device("meta"):
    ...     net = torch.nn.Linear(1024, 1024)
    >>> net = gpuinit.torch.materialize(net, device="cpu", seed=0)
    >>> bool(net.weight.abs().max() <= 1 / 32)
    True
"""

try:
    import torch as _torch  # noqa: F401 - the real torch (absolute import), not this package
except ImportError as exc:  # pragma: no cover - exercised where torch is absent
    raise ImportError('gpuinit.torch needs PyTorch, which is not installed: pip install "gpuinit[torch]" '
                      "(or install torch from pytorch.org for your CUDA version)") from exc

from .materialize import fill_, materialize
from .plan import TorchPlan, plan

__all__ = ["TorchPlan", "fill_", "materialize", "plan"]
