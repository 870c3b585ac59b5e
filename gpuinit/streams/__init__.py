"""Random streams: every parameter's numbers, defined once and reproduced on every backend.

One job per module:

- ``spec``: the stream contract (its docstring is the specification) and :class:`Fill`, what a
  fill computes;
- ``keys``: seeds and each parameter's key; ``seedseq``: the keys of many parameters at once;
- ``transforms``: the contract's own log, sine/cosine and inverse normal CDF;
- ``reference``: the NumPy implementation (Philox, :func:`generate`);
- ``cpu``: the threaded CPU driver, :func:`fill_many`.

The CUDA kernels (``gpuinit/kernels/``) are the GPU's implementation of the same contract.
"""

from .cpu import cpu_workers, fill_many
from .keys import call_seed, check_seed, derive_key, derive_keys, give_back_seed, next_seed, seed
from .reference import generate, raw_words
from .spec import CONTRACT_VERSION, FAMILIES, Fill, FillJob, FillJobs

__all__ = ["CONTRACT_VERSION", "FAMILIES", "Fill", "FillJob", "FillJobs", "call_seed", "check_seed", "cpu_workers", "derive_key", "derive_keys", "fill_many",
           "generate", "give_back_seed", "next_seed", "raw_words", "seed"]
