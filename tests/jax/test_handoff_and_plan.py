"""JAX takes gpuinit's memory as it is (no copy), and the plan says, before allocating, exactly
what init then allocates, per leaf and per device."""

import gc
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import gpuinit.jax as gj  # noqa: E402
from gpuinit import store  # noqa: E402


def abstract_tree():
    s = jax.ShapeDtypeStruct
    return {"params": {"Dense_0": {"kernel": s((300, 200), jnp.float32), "bias": s((200,), jnp.float32)},
                       "Dense_1": {"kernel": s((200, 16), jnp.float16), "bias": s((16,), jnp.float16)}}}


def pointers(array):
    return [shard.data.unsafe_buffer_pointer() for shard in array.addressable_shards]


def test_unsharded_leaves_are_views_of_one_arena_that_jax_keeps():
    gc.collect()
    before = store.live_bytes()
    plan = gj.plan(abstract_tree())
    params = gj.init(abstract_tree(), seed=0)
    leaves = jax.tree.leaves(params)
    # the leaves lie in one arena, at the offsets the store lays out, in the tree's order: JAX
    # holds gpuinit's memory, not copies of it
    ptrs = [pointers(leaf)[0] for leaf in leaves]
    offsets, size = store.layout([leaf.nbytes for leaf in leaves])
    assert all(p % 64 == 0 for p in ptrs)
    assert [p - ptrs[0] for p in ptrs] == offsets.tolist()
    assert store.live_bytes() - before == size == plan.arena_bytes["cpu"]
    # a copy would have left the arena unreferenced when init returned; JAX keeps it until the
    # arrays are gone
    assert float(jnp.sum(leaves[1])) != 0.0  # XLA computes on the arena's numbers
    del params, leaves
    gc.collect()
    assert store.live_bytes() == before


def test_each_device_s_shards_are_views_of_its_own_arena(cpu_devices):
    mesh = Mesh(np.array(cpu_devices).reshape(2, 4), ("x", "y"))
    abstract = abstract_tree()
    shardings = jax.tree.map(lambda leaf: NamedSharding(mesh, P(*("y", "x")[:len(leaf.shape)])), abstract)
    plan = gj.plan(abstract, shardings=shardings)
    gc.collect()
    before = store.live_bytes()
    params = gj.init(abstract, seed=0, shardings=shardings)
    by_device = {}
    for leaf in jax.tree.leaves(params):
        for shard in leaf.addressable_shards:
            by_device.setdefault(shard.device, []).append((shard.data.unsafe_buffer_pointer(), shard.data.nbytes))
    for device, spans in by_device.items():
        offsets, size = store.layout([n for _, n in spans])
        assert [p - spans[0][0] for p, _ in spans] == offsets.tolist(), device
        assert plan.device_bytes[str(device)] == sum(n for _, n in spans)
    assert store.live_bytes() - before == plan.arena_bytes["cpu"]
    del params, leaf, shard
    gc.collect()
    assert store.live_bytes() == before


def test_plan_lists_leaves_devices_and_fit():
    mesh = Mesh(np.array(jax.devices("cpu")[:8]).reshape(8), ("x",))
    abstract = abstract_tree()
    shardings = jax.tree.map(lambda leaf: NamedSharding(mesh, P("x") if leaf.shape[0] % 8 == 0 else P()), abstract)
    plan = gj.plan(abstract, shardings=shardings)
    kernel = next(leaf for leaf in plan.leaves if leaf.path == "params/Dense_0/kernel")
    assert kernel.bytes == 300 * 200 * 4 and kernel.shard_shape == (300, 200)  # 300 is not a multiple of 8
    bias = next(leaf for leaf in plan.leaves if leaf.path == "params/Dense_0/bias")
    assert bias.shard_shape == (25,) and bias.fill == "constant(0)"
    assert plan.parameter_bytes == 300 * 200 * 4 + 200 * 4 + 200 * 16 * 2 + 16 * 2
    per_device = 300 * 200 * 4 + 25 * 4 + 25 * 16 * 2 + 2 * 2
    assert plan.device_bytes == {str(d): per_device for d in mesh.devices.flat}
    assert plan.fits and set(plan.handoff.values()) == {"zero-copy"}
    assert "params/Dense_0/kernel" in plan.summary() and "fits: yes" in str(plan)
    assert plan.to_dict()["fits"] is True


def test_gpuinit_imports_no_jax_and_the_bridge_says_how_to_install_it():
    code = ("import sys\nimport gpuinit\nassert 'jax' not in sys.modules\nsys.modules['jax'] = None\n"
            "try:\n    import gpuinit.jax\nexcept ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "gpuinit[jax]"' in out.stdout


def test_unsharded_leaves_go_to_jax_s_default_device_uncommitted(cpu_devices):
    with jax.default_device(cpu_devices[3]):
        params = gj.init(abstract_tree(), seed=0)
        assert gj.plan(abstract_tree()).device_bytes.keys() == {str(cpu_devices[3])}
    for leaf in jax.tree.leaves(params):
        assert leaf.devices() == {cpu_devices[3]} and not leaf.committed


def test_no_full_size_temporary_while_sharding(cpu_devices):
    """The host memory an 8-way column split of a 16 MiB leaf takes at its peak is the 8 arenas
    of 2 MiB: no temporary of the whole leaf (which would double it)."""
    import tracemalloc

    mesh = Mesh(np.array(cpu_devices).reshape(8), ("x",))
    abstract = {"kernel": jax.ShapeDtypeStruct((2048, 2048), jnp.float32)}
    shardings = {"kernel": NamedSharding(mesh, P(None, "x"))}
    gj.init(abstract, seed=0, shardings=shardings)  # warm up: JAX's caches, the engine
    gc.collect()
    tracemalloc.start()
    try:
        params = gj.init(abstract, seed=0, shardings=shardings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    leaf_bytes = 2048 * 2048 * 4
    assert gj.plan(abstract, shardings=shardings).arena_bytes["cpu"] == leaf_bytes
    assert leaf_bytes <= peak < 1.1 * leaf_bytes, peak / leaf_bytes  # the arenas are seen, and little else
    assert params["kernel"].addressable_shards[0].data.shape == (2048, 256)
