"""Sharded on a mesh, the same numbers: every device's shard, made alone, equals that block of the
unsharded initialization bit for bit, for 1-D and 2-D meshes and every way to split a leaf."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import gpuinit  # noqa: E402
import gpuinit.jax as gj  # noqa: E402
from gpuinit import dtypes  # noqa: E402


def abstract_tree():
    """Every kind of fill and dtype, 1-D to 3-D leaves, sizes that no run length divides evenly."""
    low = jnp.bfloat16 if dtypes.bfloat16() is not None else jnp.float16
    s = jax.ShapeDtypeStruct
    return {"params": {
        "Dense_0": {"kernel": s((48, 40), jnp.float32), "bias": s((40,), jnp.float32)},
        "Conv_0": {"kernel": s((8, 16, 24), jnp.float32)},
        "Embed_0": {"embedding": s((64, 24), low)},
        "LayerNorm_0": {"scale": s((24,), jnp.float16)},
        "Head_0": {"w": s((16, 32), jnp.float32)},
    }}


# a uniform, and a Python hook (Orthogonal needs its whole leaf: made once, then cut into blocks)
RULES = {"Head_0/w$": gpuinit.init.Uniform(0.5), "Conv_0/kernel$": gpuinit.init.Orthogonal()}


def bits(a):
    a = np.asarray(a)
    return a.view(f"u{a.itemsize}")


@pytest.fixture(scope="module")
def whole():
    return gj.init(abstract_tree(), seed=11, rules=RULES)


def meshes(devices):
    return {"1d": Mesh(np.array(devices).reshape(8), ("x",)),
            "2d": Mesh(np.array(devices).reshape(2, 4), ("x", "y"))}


def spec_for(spec, ndim):
    """The spec for a leaf of ``ndim`` dimensions: as asked, cut to its rank."""
    return P(*tuple(spec)[:ndim])


@pytest.mark.parametrize("mesh_name,spec", [
    ("1d", P("x", None)), ("1d", P(None, "x")),
    ("2d", P("x", None)), ("2d", P(None, "x")), ("2d", P("x", "y")), ("2d", P("y", "x")),
    ("2d", P(("x", "y"), None)), ("2d", P(None, None, "y")),
])
def test_shards_are_the_blocks_of_the_unsharded_init(cpu_devices, whole, mesh_name, spec):
    mesh = meshes(cpu_devices)[mesh_name]
    abstract = abstract_tree()
    shardings = jax.tree.map(lambda leaf: NamedSharding(mesh, spec_for(spec, len(leaf.shape))), abstract)
    sharded = gj.init(abstract, seed=11, rules=RULES, shardings=shardings)
    pairs = zip(jax.tree.leaves(whole), jax.tree.leaves(sharded), jax.tree.leaves(shardings))
    for expected, got, sharding in pairs:
        assert got.sharding == sharding and got.dtype == expected.dtype
        assert len(got.addressable_shards) == 8
        for shard in got.addressable_shards:  # each device holds exactly its block
            assert shard.data.devices() == {shard.device}
            np.testing.assert_array_equal(bits(shard.data), bits(np.asarray(expected)[shard.index]))
        np.testing.assert_array_equal(bits(got), bits(expected))


def test_one_sharding_for_every_leaf_and_none_for_some(cpu_devices, whole):
    mesh = meshes(cpu_devices)["2d"]
    replicated = gj.init(abstract_tree(), seed=11, rules=RULES, shardings=NamedSharding(mesh, P()))
    for expected, got in zip(jax.tree.leaves(whole), jax.tree.leaves(replicated)):
        assert got.sharding.is_fully_replicated and len(got.devices()) == 8
        np.testing.assert_array_equal(bits(got), bits(expected))
    abstract = abstract_tree()
    shardings = jax.tree.map(lambda leaf: None, abstract, is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct))
    shardings["params"]["Dense_0"]["kernel"] = NamedSharding(mesh, P("y", "x"))
    mixed = gj.init(abstract, seed=11, rules=RULES, shardings=shardings)
    assert mixed["params"]["Dense_0"]["kernel"].sharding.spec == P("y", "x")
    assert len(mixed["params"]["Dense_0"]["bias"].devices()) == 1
    for expected, got in zip(jax.tree.leaves(whole), jax.tree.leaves(mixed)):
        np.testing.assert_array_equal(bits(got), bits(expected))


def test_shardings_the_abstract_leaves_carry_are_kept(cpu_devices, whole):
    """What ``jax.jit(init, out_shardings=...).eval_shape`` gives: ShapeDtypeStructs that name
    their sharding; gpuinit places each leaf there without being told again."""
    mesh = meshes(cpu_devices)["2d"]
    sharding = NamedSharding(mesh, P("y"))
    abstract = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
                            abstract_tree())
    placed = gj.init(abstract, seed=11, rules=RULES)
    for expected, got in zip(jax.tree.leaves(whole), jax.tree.leaves(placed)):
        assert got.sharding == sharding and len(got.devices()) == 8
        np.testing.assert_array_equal(bits(got), bits(expected))


def test_the_numbers_depend_on_the_seed_and_path_only(whole):
    again = gj.init(abstract_tree(), seed=11, rules=RULES)
    other = gj.init(abstract_tree(), seed=12, rules=RULES)
    kernel = ("params", "Dense_0", "kernel")
    get = lambda tree: np.asarray(tree[kernel[0]][kernel[1]][kernel[2]])  # noqa: E731
    np.testing.assert_array_equal(get(again), get(whole))
    assert not np.array_equal(get(other), get(whole))
    # a leaf alone, under the same path, has the numbers it has in the whole tree
    alone = gj.init({"params": {"Dense_0": {"kernel": jax.ShapeDtypeStruct((48, 40), jnp.float32)}}}, seed=11)
    np.testing.assert_array_equal(get(alone), get(whole))


def test_a_shard_is_made_alone_without_the_whole_leaf(cpu_devices):
    """Each device's arena holds its blocks only: 1/8 of the leaf for P(None, 'x'), not the leaf."""
    mesh = meshes(cpu_devices)["1d"]
    abstract = {"kernel": jax.ShapeDtypeStruct((256, 1024), jnp.float32)}
    plan = gj.plan(abstract, shardings={"kernel": NamedSharding(mesh, P(None, "x"))})
    assert set(plan.device_bytes.values()) == {256 * 1024 * 4 // 8}
    assert plan.arena_bytes == {"cpu": 256 * 1024 * 4}  # 8 arenas of one shard each, on the host
    assert plan.leaves[0].shard_shape == (256, 128)


def test_the_numpy_engine_makes_the_same_shards(cpu_devices, whole, monkeypatch):
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", "numpy")
    mesh = meshes(cpu_devices)["2d"]
    abstract = abstract_tree()
    shardings = jax.tree.map(lambda leaf: NamedSharding(mesh, spec_for(P("y", "x"), len(leaf.shape))), abstract)
    sharded = gj.init(abstract, seed=11, rules=RULES, shardings=shardings)
    for expected, got in zip(jax.tree.leaves(whole), jax.tree.leaves(sharded)):
        np.testing.assert_array_equal(bits(got), bits(expected))


def test_flax_s_own_sharding_recipes(cpu_devices):
    """Flax's partitioning metadata: linen's with_partitioning + nn.get_sharding, and nnx's
    with_partitioning + nnx.get_named_sharding, give trees gpuinit takes as they are."""
    from flax import linen, nnx

    mesh = Mesh(np.array(cpu_devices).reshape(2, 4), ("data", "model"))
    lecun = linen.initializers.lecun_normal()

    class Linen(linen.Module):
        @linen.compact
        def __call__(self, x):
            x = linen.Dense(64, kernel_init=linen.with_partitioning(lecun, (None, "model")))(x)
            return linen.Dense(32, kernel_init=linen.with_partitioning(lecun, ("model", None)))(x)

    model, x = Linen(), jnp.zeros((2, 16))
    abstract = jax.eval_shape(model.init, jax.random.key(0), x)
    params = gj.init(abstract, seed=1, shardings=linen.get_sharding(abstract, mesh))
    whole = gj.init(abstract, seed=1)
    kernel = params["params"]["Dense_0"]["kernel"]
    assert kernel.value.sharding.spec == P(None, "model")
    for a, b in zip(jax.tree.leaves(linen.unbox(params)), jax.tree.leaves(linen.unbox(whole))):
        np.testing.assert_array_equal(bits(a), bits(b))
    assert model.apply(params, x).shape == (2, 32)

    class Nnx(nnx.Module):
        def __init__(self, rngs):
            init = nnx.with_partitioning(nnx.initializers.lecun_normal(), ("model", None))
            self.linear = nnx.Linear(16, 64, kernel_init=init, rngs=rngs)

        def __call__(self, x):
            return self.linear(x)

    with jax.set_mesh(mesh):
        graphdef, state = nnx.split(nnx.eval_shape(lambda: Nnx(nnx.Rngs(0))))
    params = gj.init(state, seed=1, shardings=nnx.get_named_sharding(state, mesh))
    kernel = params["linear"]["kernel"][...]
    assert kernel.sharding.spec == P("model", None)
    np.testing.assert_array_equal(bits(kernel), bits(gj.init(state, seed=1)["linear"]["kernel"][...]))
    assert nnx.merge(graphdef, params)(jnp.zeros((2, 16))).shape == (2, 64)
