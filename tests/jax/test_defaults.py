"""Flax's defaults: every leaf name's initializer has Flax's bounds and moments, and a real linen
and nnx model get, leaf for leaf, the distributions Flax's own init gives them."""

import math
import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
flax = pytest.importorskip("flax")
from flax import linen, nnx  # noqa: E402

import gpuinit  # noqa: E402
import gpuinit.jax as gj  # noqa: E402
from gpuinit import store  # noqa: E402
from gpuinit.errors import InitializerError  # noqa: E402
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
    ("kernel", (3, 3, 128, 128), "Conv_0", lambda k, s: linen.initializers.lecun_normal()(k, s)),
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


# Kernels of more than 2 dimensions: a convolution's fans only where the module says convolution.

def abstract_of(model, *inputs):
    return jax.eval_shape(model.init, jax.random.key(0), *inputs)


def test_a_dense_general_kernel_is_refused_with_the_rule_to_write_and_that_rule_gives_flaxs_values():
    model, x = linen.Sequential([linen.DenseGeneral((16, 32))]), jnp.zeros((2, 256))
    abstract = abstract_of(model, x)
    before = store.live_bytes()
    with pytest.raises(InitializerError) as info:
        gj.init(abstract, seed=0)
    assert store.live_bytes() == before
    message = str(info.value)
    assert "'params/layers_0/kernel'" in message and "(256, 16, 32)" in message
    assert "DenseGeneral" in message and "convolution" in message and "ambiguous" in message
    rule = re.search(r"rules=(\{.*?\)\})", message).group(1)  # the first rule: a DenseGeneral's
    assert "in_axis=0, out_axis=(1, 2)" in rule
    params = gj.init(abstract, seed=0, rules=eval(rule, {"gpuinit": gpuinit}))
    theirs = model.init(jax.random.key(0), x)
    ours_k, theirs_k = (np.asarray(t["params"]["layers_0"]["kernel"]) for t in (params, theirs))
    assert theirs_k.std() == pytest.approx(1 / 16, rel=0.05)  # fan_in 256
    assert ours_k.std() == pytest.approx(theirs_k.std(), rel=0.03)  # not 4x too small (fan_in 16 * 256)
    assert model.apply(params, x).shape == (2, 16, 32)


def test_an_nnx_linear_general_is_refused_too():
    abstract = nnx.state(nnx.eval_shape(lambda: nnx.LinearGeneral(64, (8, 16), rngs=nnx.Rngs(0))), nnx.Param)
    with pytest.raises(InitializerError, match=r"'kernel'.*\(64, 8, 16\).*in_axis=0, out_axis=\(1, 2\)"):
        gj.init(abstract, seed=0)
    state = gj.init(abstract, seed=0, rules={"kernel$": gpuinit.init.VarianceScaling(
        1.0, "fan_in", "truncated_normal", in_axis=0, out_axis=(1, 2))})
    theirs = nnx.state(nnx.LinearGeneral(64, (8, 16), rngs=nnx.Rngs(0)), nnx.Param)
    assert compare_leaf_by_leaf(state, theirs) == 2


class Convs(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = linen.Conv(32, (5,))(x)                              # (5, 64, 32): fan_in 320
        x = linen.ConvTranspose(32, (3, 3), name="UpConv")(x[..., None, :])  # a user's name with "conv"
        return linen.MultiHeadDotProductAttention(num_heads=4, qkv_features=64)(x[:, :, 0])


def test_convolutions_and_attention_get_flaxs_fans_on_purpose():
    x = jnp.zeros((2, 8, 64))
    model = Convs()
    abstract = abstract_of(model, x)
    params = gj.init(abstract, seed=0)
    theirs = model.init(jax.random.key(0), x)
    assert compare_leaf_by_leaf(params, theirs) == 12
    out = params["params"]["MultiHeadDotProductAttention_0"]["out"]["kernel"]
    assert out.shape == (4, 16, 32) and np.asarray(out).std() == pytest.approx(1 / 8, rel=0.06)  # fan_in 64


class NnxCnn(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(3, 16, (3, 3), rngs=rngs)
        self.Conv_out = nnx.Conv(16, 32, (5,), rngs=rngs)
        self.head = nnx.Linear(32, 10, rngs=rngs)


def test_nnx_convolutions_named_conv_get_flaxs_fans():
    abstract = nnx.state(nnx.eval_shape(lambda: NnxCnn(nnx.Rngs(0))), nnx.Param)
    assert compare_leaf_by_leaf(gj.init(abstract, seed=0), nnx.state(NnxCnn(nnx.Rngs(0)), nnx.Param)) == 6


def test_a_kernel_of_three_dimensions_in_a_module_not_named_as_a_convolution_is_refused():
    kernel = jax.ShapeDtypeStruct((5, 64, 32), jnp.float32)
    with pytest.raises(InitializerError, match=r"'params/Encoder_0/proj/kernel'.*name 'proj'.*"
                                               r"gpuinit.jax.LECUN_NORMAL"):
        gj.init({"params": {"Encoder_0": {"proj": {"kernel": kernel}}}}, seed=0)
    with pytest.raises(InitializerError, match="'params/out/kernel'"):  # "out" only beside query/key/value
        gj.init({"params": {"out": {"kernel": kernel}}}, seed=0)


# Recurrent cells: hidden-to-hidden kernels orthogonal, as Flax's.

def is_orthogonal(k):
    k = np.asarray(k, np.float64)
    gram = k.T @ k if k.shape[0] >= k.shape[1] else k @ k.T
    return np.allclose(gram, np.eye(len(gram)), atol=1e-5)


def compare_cells(got, theirs):
    """Leaf for leaf: orthogonal where Flax's is (and only there), else Flax's constants and std."""
    pairs = jax.tree_util.tree_flatten_with_path(got)[0]
    their_leaves = jax.tree_util.tree_leaves(theirs)
    assert len(pairs) == len(their_leaves)
    orthogonal = []
    for (path, a), b in zip(pairs, their_leaves):
        name = jax.tree_util.keystr(path).removesuffix(".value")
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, name
        if a.ndim == 2 and is_orthogonal(b):
            assert is_orthogonal(a), name
            orthogonal.append(name)
        elif np.all(b == b.reshape(-1)[0]):
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert (a.ndim != 2 or not is_orthogonal(a)) and a.std() == pytest.approx(b.std(), rel=0.06), name
    return orthogonal


@pytest.mark.parametrize("cell,recurrent", [
    (linen.LSTMCell, ["hf", "hg", "hi", "ho"]), (linen.OptimizedLSTMCell, ["hf", "hg", "hi", "ho"]),
    (linen.GRUCell, ["hn", "hr", "hz"]), (linen.MGUCell, ["hf", "hn"]), (linen.SimpleCell, ["h"]),
])
def test_linen_recurrent_cells_get_flaxs_orthogonal_hidden_kernels(cell, recurrent):
    model, x = linen.RNN(cell(64)), jnp.zeros((2, 3, 128))
    params = gj.init(abstract_of(model, x), seed=0)
    orthogonal = compare_cells(params, model.init(jax.random.key(0), x))
    assert orthogonal == [f"['params']['cell']['{n}']['kernel']" for n in recurrent]
    if cell is linen.MGUCell:  # its forget gate's bias starts at one
        assert (np.asarray(params["params"]["cell"]["if"]["bias"]) == 1).all()
    assert model.apply(params, x).shape == (2, 3, 64)


@pytest.mark.parametrize("cell,recurrent", [
    (nnx.LSTMCell, ["hf", "hg", "hi", "ho"]), (nnx.OptimizedLSTMCell, ["dense_h"]),  # (64, 256): rows
    (nnx.GRUCell, ["dense_h"]), (nnx.SimpleCell, ["dense_h"]),
])
def test_nnx_recurrent_cells_get_flaxs_orthogonal_hidden_kernels(cell, recurrent):
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: cell(128, 64, rngs=nnx.Rngs(0))))
    state = gj.init(abstract, seed=0)
    orthogonal = compare_cells(state, nnx.state(cell(128, 64, rngs=nnx.Rngs(0))))
    assert orthogonal == [f"['{n}']['kernel']" for n in recurrent]
    model = nnx.merge(graphdef, state)
    carry = model.initialize_carry((2, 128), nnx.Rngs(1))
    assert model(carry, jnp.zeros((2, 128)))[1].shape == (2, 64)


def test_conv_lstm_cell_gets_convolution_fans():
    cell, x = linen.ConvLSTMCell(16, (3,)), jnp.zeros((2, 8, 32))
    carry = cell.initialize_carry(jax.random.key(0), x.shape)
    params = gj.init(abstract_of(cell, carry, x), seed=0)
    assert compare_cells(params, cell.init(jax.random.key(0), carry, x)) == []


def test_a_module_that_only_looks_like_a_cell_keeps_lecun_normal():
    s = jax.ShapeDtypeStruct
    tree = {"params": {"Block_0": {"h": {"kernel": s((64, 48), jnp.float32)},        # not (H, k * H)
                                   "i": {"kernel": s((64, 64), jnp.float32)}},
                       "Other_0": {"h": {"kernel": s((64, 64), jnp.float32)},        # not a cell's siblings
                                   "mlp": {"kernel": s((64, 64), jnp.float32)}}}}
    params = gj.init(tree, seed=0)
    for module in ("Block_0", "Other_0"):
        assert not is_orthogonal(params["params"][module]["h"]["kernel"])
    assert gj.flax_default(Leaf("c/h/kernel", "kernel", "h", (8, 8), np.dtype("float32")),
                           {"c": {"i", "h"}}) is gj.ORTHOGONAL


# Layers stacked by nn.scan / vmap: the copies' leading axes are in neither fan, as in Flax.

class ScannedBlock(linen.Module):
    @linen.compact
    def __call__(self, h, _):
        h = h + linen.MultiHeadDotProductAttention(num_heads=4)(linen.LayerNorm()(h))
        y = linen.Dense(128, use_bias=False)(h)                 # (L, 64, 128)
        h = h + linen.Dense(64, use_bias=False)(linen.gelu(y))
        z = linen.Conv(64, (3,), use_bias=False)(linen.BatchNorm(use_running_average=True)(h))
        return h + z, None


class Scanned(linen.Module):
    @linen.compact
    def __call__(self, x):
        stack = linen.scan(ScannedBlock, variable_axes={"params": 0, "batch_stats": 0},
                           split_rngs={"params": True}, length=3)
        return stack()(x, None)[0]


def test_layers_stacked_by_scan_get_flaxs_fans_for_each_copy():
    model, x = Scanned(), jnp.zeros((2, 8, 64))
    params = gj.init(abstract_of(model, x), seed=0)
    theirs = model.init(jax.random.key(0), x)
    compare_leaf_by_leaf(params, theirs)
    block = params["params"]["ScanScannedBlock_0"]
    # the stacked axis (3 copies) counted as an input would give a std sqrt(3) or 3x off
    assert np.asarray(block["Conv_0"]["kernel"]).std() == pytest.approx((1 / 192) ** 0.5, rel=0.05)
    assert np.asarray(block["MultiHeadDotProductAttention_0"]["query"]["kernel"]).std() == pytest.approx(
        1 / 8, rel=0.05)
    assert model.apply(params, x).shape == x.shape


def test_nnx_layers_stacked_by_vmap_get_flaxs_fans_for_each_copy():
    class Block(nnx.Module):
        def __init__(self, rngs):
            self.attn = nnx.MultiHeadAttention(num_heads=4, in_features=32, decode=False, rngs=rngs)
            self.conv = nnx.Conv(32, 32, kernel_size=(3,), rngs=rngs)

    class Model(nnx.Module):
        def __init__(self, rngs):
            @nnx.split_rngs(splits=4)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def make(rngs):
                return Block(rngs)
            self.blocks = make(rngs)

    abstract = nnx.state(nnx.eval_shape(lambda: Model(nnx.Rngs(0))), nnx.Param)
    state = gj.init(abstract, seed=0)
    compare_leaf_by_leaf(state, nnx.state(Model(nnx.Rngs(0)), nnx.Param))


def test_a_stacked_kernel_nothing_shows_to_be_stacked_is_refused_with_a_rule_that_works():
    class Proj(linen.Module):
        @linen.compact
        def __call__(self, h, _):
            return linen.Dense(64, name="proj")(h), None

    class Stack(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.scan(Proj, variable_axes={"params": 0}, split_rngs={"params": True}, length=4)()(x, None)[0]

    model, x = Stack(), jnp.zeros((2, 64))
    abstract = abstract_of(model, x)
    with pytest.raises(InitializerError, match=r"stacked by nn.scan.*in_axis=-2, out_axis=-1, batch_axis=\(0,\)"):
        gj.init(abstract, seed=0)
    rule = gpuinit.init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1, batch_axis=(0,))
    params = gj.init(abstract, seed=0, rules={"proj/kernel$": rule})
    compare_leaf_by_leaf(params, model.init(jax.random.key(0), x))


def test_conv_must_be_a_word_of_the_name():
    kernel = jax.ShapeDtypeStruct((64, 4, 16), jnp.float32)
    with pytest.raises(InitializerError, match="'convert_proj'"):  # a DenseGeneral, not a convolution
        gj.init({"params": {"convert_proj": {"kernel": kernel}}}, seed=0)
    for name in ("UpConv", "stem_conv", "conv1", "deconv", "dwconv", "upconv", "convblock", "ConvTranspose_0"):
        got = gj.init({"params": {name: {"kernel": kernel}}}, seed=0)["params"][name]["kernel"]
        assert np.asarray(got).std() == pytest.approx((1 / 256) ** 0.5, rel=0.05)  # fan_in 64 * 4


def test_presets_in_rules_read_jaxs_kernel_layout():
    s = jax.ShapeDtypeStruct
    tree = {"params": {"Dense_0": {"kernel": s((1024, 16), jnp.float32)},
                       "Conv_0": {"kernel": s((3, 3, 64, 128), jnp.float32)}}}
    for rule in (gpuinit.init.KaimingNormal(), "kaiming_normal"):
        params = gj.init(tree, seed=0, rules={"kernel$": rule})["params"]
        assert np.asarray(params["Dense_0"]["kernel"]).std() == pytest.approx((2 / 1024) ** 0.5, rel=0.05)
        assert np.asarray(params["Conv_0"]["kernel"]).std() == pytest.approx((2 / 576) ** 0.5, rel=0.05)
    # axes given explicitly are kept: here gpuinit's (out, in) reading of the Dense kernel
    torch_layout = gpuinit.init.VarianceScaling(2.0, "fan_in", "normal", in_axis=1, out_axis=0)
    params = gj.init(tree, seed=0, rules={"Dense_0/kernel$": torch_layout})["params"]
    assert np.asarray(params["Dense_0"]["kernel"]).std() == pytest.approx((2 / 16) ** 0.5, rel=0.05)


def test_prelu_gets_flaxs_slope_and_every_leaf_without_a_default_is_listed_at_once():
    model, x = linen.Sequential([linen.Dense(4), linen.PReLU()]), jnp.zeros((1, 3))
    params = gj.init(abstract_of(model, x), seed=0)
    slope = params["params"]["layers_1"]["negative_slope"]
    np.testing.assert_array_equal(slope, model.init(jax.random.key(0), x)["params"]["layers_1"]["negative_slope"])
    assert model.apply(params, x).shape == (1, 4)
    s = jax.ShapeDtypeStruct((4,), jnp.float32)
    with pytest.raises(InitializerError, match=r"2 leaves: 'params/a/w' .*'params/b/w'.*'\^params/a/w\$'"):
        gj.init({"params": {"a": {"w": s}, "b": {"w": s}}}, seed=0)


def test_shapes_that_only_look_stacked_are_not_taken_for_stacking():
    """A ConvLocal's per-position bias, and a per-head norm beside a DenseGeneral: their extra
    leading axes are not copies, and their kernels keep Flax's fans (or are refused)."""
    class Local(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.ConvLocal(16, (3, 3), padding="VALID")(x)  # bias (8, 8, 16): one per position

    model, x = Local(), jnp.zeros((1, 10, 10, 64))
    compare_leaf_by_leaf(gj.init(abstract_of(model, x), seed=0), model.init(jax.random.key(0), x))
    s = jax.ShapeDtypeStruct
    tree = {"params": {"norm": {"scale": s((4, 16), jnp.float32)},       # RMSNorm(feature_axes=(-2, -1))
                       "q_proj": {"kernel": s((64, 4, 16), jnp.float32)},
                       "o_proj": {"kernel": s((4, 16, 64), jnp.float32)}}}
    with pytest.raises(InitializerError, match="'params/o_proj/kernel'.*ambiguous"):
        gj.init(tree, seed=0, rules={"q_proj": gpuinit.init.VarianceScaling(1.0, "fan_in", "truncated_normal",
                                                                             in_axis=0, out_axis=(1, 2))})
