"""gpuinit for JAX and Flax: parameter trees made where they live, the same numbers on any mesh.

``gpuinit.jax.init(abstract, seed, rules=None, shardings=None)`` turns the tree of shapes that
``jax.eval_shape`` gives for a Flax (linen or nnx) model into a tree of ``jax.Array``\\ s. Every
leaf draws from its own counter-based stream keyed by ``(seed, path)``, so the numbers do not
depend on the mesh, the sharding or the device; with ``shardings``, each device makes only its
own shard, with no full-size temporary, and JAX takes gpuinit's memory without a copy (the CPU
client aliases aligned host buffers; on a CUDA GPU, DLPack from CuPy).

Modules, one job each:

- ``leaves``: the tree's leaves, their paths (``params/Dense_0/kernel``) and shardings, checked;
- ``defaults``: the initializer of each leaf, by the caller's rules or Flax's defaults by name;
- ``planning``: :func:`plan`, bytes per leaf and per device, and whether they fit, allocating nothing;
- ``initialize``: :func:`init`, which allocates, fills and hands the arrays to JAX.

Needs JAX: ``pip install "gpuinit[jax]"``.
"""

try:
    import jax as _jax  # noqa: F401 - the real jax: this package's modules import it absolutely
except ImportError as exc:  # pragma: no cover - tested where jax is absent
    raise ImportError('gpuinit.jax needs JAX, which is not installed: pip install "gpuinit[jax]" '
                      f'(or pip install "jax>=0.4.30"); the import failed with: {exc}') from exc

from .defaults import DEFAULTS, EMBED, LECUN_NORMAL, ORTHOGONAL, flax_default
from .initialize import init
from .planning import LeafPlan, Plan, plan

__all__ = ["DEFAULTS", "EMBED", "LECUN_NORMAL", "ORTHOGONAL", "LeafPlan", "Plan", "flax_default", "init", "plan"]
