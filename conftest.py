"""Doctest collection of the optional bridges: skipped where their framework is not installed."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("jax") is None:
    collect_ignore.append("gpuinit/jax")
