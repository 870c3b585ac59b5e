"""Collection for the whole tree: the optional bridges' modules import their library at the top,
so where the library is not installed, doctest collection leaves them out (their tests skip)."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("torch") is None:
    collect_ignore += ["gpuinit/torch", "tests/torch"]
if importlib.util.find_spec("jax") is None:
    collect_ignore.append("gpuinit/jax")
