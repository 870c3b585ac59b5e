"""Flax's defaults: every leaf name's initializer has Flax's bounds and moments, and a real linen
and nnx model get, leaf for leaf, the distributions Flax's own init gives them."""

import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
flax = pytest.importorskip("flax")
from flax import linen, nnx  # noqa: E402

import gpuinit.jax as gj  # noqa: E402
from gpuinit.jax.leaves import Leaf  # noqa: E402


def moments(x):
    x = np.asarray(x, np.float64).reshape(-1)
    mean, std = x.mean(), x.std()
    return mean, std, float(((x - mean) ** 4).mean() / std ** 4), float(np.abs(x).max())


def ours(name, shape, parent=""):
    path = f"params/{parent or 'Layer_0'}/{name}"
    tree = gj.init({"params": {parent or "Layer_0": {name: jax.ShapeDtypeStruct(shape, jnp.float32)}}}, seed=5)
    return np.asarray(tree["params"][parent or "Layer_0"][name]), path


@pytest.mark.parametrize("name,shape,parent,theirs", [
    ("kernel", (512, 512), "", lambda k, s: linen.initializers.lecun_normal()(k, s)),
    ("kernel", (3, 3, 128, 128), "", lambda k, s: linen.initializers.lecun_normal()(k, s)),  # a Conv kernel
    ("embedding", (4096, 64), "", lambda k, s: linen.initializers.variance_scaling(1.0, "fan_in", "normal",
                                                                                     out_axis=0)(k, s)),
    # attention's DenseGeneral: an (in, heads * head_dim) matrix, reshaped
    ("kernel", (256, 8, 64), "query", lambda k, s: linen.initializers.lecun_normal()(k, (256, 512)).reshape(s)),
])
def test_random_defaults_have_flaxs_bounds_and_moments(name, shape, parent, theirs):
    got, path = ours(name, shape, parent)
    mean, std, kurtosis, peak = moments(got)
    t_mean, t_std, t_kurtosis, t_peak = moments(theirs(jax.random.key(0), shape))
    assert abs(mean) < 0.01 * t_std and abs(t_mean) < 0.01 * t_std
    assert std == pytest.approx(t_std, rel=0.01)
    assert kurtosis == pytest.approx(t_kurtosis, abs=0.06)  # truncated (2.4) vs plain normal (3.0)
    if name == "kernel":  # a normal truncated at 2 of its own std: both stop at the same bound
        fan_in = math.prod(shape) / shape[-1] if parent != "query" else shape[0]
        bound = 2 * math.sqrt(1 / fan_in) / 0.87962566103423978
        assert 0.97 * bound < peak <= bound * (1 + 1e-6) and 0.97 * bound < t_peak <= bound * (1 + 1e-6)


@pytest.mark.parametrize("name,value", [("bias", 0.0), ("scale", 1.0), ("mean", 0.0), ("var", 1.0)])
def test_constant_defaults(name, value):
    got, _ = ours(name, (300,))
    assert (got == value).all()


def test_defaults_table_names_flaxs_layouts():
    assert gj.flax_default(Leaf("a/kernel", "kernel", "a", (4, 4), np.dtype("float32"))) is gj.LECUN_NORMAL
    assert gj.flax_default(Leaf("a/embedding", "embedding", "a", (4, 4), np.dtype("float32"))) is gj.EMBED
    assert gj.flax_default(Leaf("a/w", "w", "a", (4, 4), np.dtype("float32"))) is None


class LinenNet(linen.Module):
    @linen.compact
    def __call__(self, tokens):
        x = linen.Embed(512, 64)(tokens)
        x = linen.MultiHeadDotProductAttention(num_heads=4)(x)
        x = linen.LayerNorm()(x)
        x = linen.Conv(64, (3,))(x)
        x = linen.BatchNorm(use_running_average=True)(x)
        return linen.Dense(128)(x)


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(512, 64, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(4, 64, decode=False, rngs=rngs)
        self.norm = nnx.LayerNorm(64, rngs=rngs)
        self.out = nnx.Linear(64, 128, rngs=rngs)

    def __call__(self, tokens):
        x = self.embed(tokens)
        return self.out(self.norm(self.attn(x)))


def compare_leaf_by_leaf(got, theirs):
    paths, got_leaves = zip(*jax.tree_util.tree_flatten_with_path(got)[0])
    their_leaves = jax.tree_util.tree_leaves(theirs)
    assert len(got_leaves) == len(their_leaves)
    for path, a, b in zip(paths, got_leaves, their_leaves):
        assert isinstance(a, jax.Array) and a.shape == b.shape and a.dtype == b.dtype, path
        a, b = np.asarray(a), np.asarray(b)
        if np.all(b == b.reshape(-1)[0]):
            np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
        else:  # the smallest random leaf has 4096 elements: its std is within a few percent
            assert a.std() == pytest.approx(b.std(), rel=0.06), jax.tree_util.keystr(path)
    return len(got_leaves)


def test_a_linen_model_gets_flaxs_distributions_and_runs():
    model, tokens = LinenNet(), jnp.zeros((2, 8), jnp.int32)
    abstract = jax.eval_shape(model.init, jax.random.key(0), tokens)
    params = gj.init(abstract, seed=0)
    assert compare_leaf_by_leaf(params, model.init(jax.random.key(0), tokens)) == 19
    assert model.apply(params, tokens).shape == (2, 8, 128)


def test_an_nnx_model_gets_flaxs_distributions_and_runs():
    abstract_model = nnx.eval_shape(lambda: NnxNet(nnx.Rngs(0)))
    graphdef, abstract = nnx.split(abstract_model)
    state = gj.init(abstract, seed=0)
    assert isinstance(state, nnx.State)
    assert compare_leaf_by_leaf(state, nnx.state(NnxNet(nnx.Rngs(0)))) == 13
    model = nnx.merge(graphdef, state)
    assert model(jnp.zeros((2, 8), jnp.int32)).shape == (2, 8, 128)
