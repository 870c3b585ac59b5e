"""Collection for the whole tree: the optional bridges' modules import their library at the top,
so where the library does not import, doctest collection leaves them out (their tests skip)."""

collect_ignore = []
try:
    import torch  # noqa: F401
except ImportError:
    collect_ignore += ["gpuinit/torch", "tests/torch"]
