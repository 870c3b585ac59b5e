"""Bad input to the JAX bridge: a GpuInitError of the right class that names the culprit and the
fix, raised before anything is allocated."""

import gc

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

import gpuinit  # noqa: E402
import gpuinit.jax as gj  # noqa: E402
from gpuinit import store  # noqa: E402
from gpuinit.errors import (ArgumentError, ArgumentTypeError, GpuInitError, InitializerError,  # noqa: E402
                            OutOfMemoryError, ShapeError)

S = jax.ShapeDtypeStruct


def tree():
    return {"params": {"Dense_0": {"kernel": S((16, 8), jnp.float32), "bias": S((8,), jnp.float32)}}}


def mesh8():
    return Mesh(np.array(jax.devices("cpu")[:8]).reshape(8), ("x",))


def with_leaf(path, value):
    t = tree()
    t["params"]["Dense_0"][path] = value
    return t


class Broken(gpuinit.init.Initializer):
    """A Python initializer that fails after the arena was taken."""

    def _init_weight(self, name, arr):
        raise RuntimeError("boom")


CASES = [
    ("a Python initializer that fails", lambda: gj.init(tree(), 0, rules={"kernel": Broken()}), InitializerError,
     ("params/Dense_0/kernel", "RuntimeError: boom")),
    ("an integer leaf", lambda: gj.init(with_leaf("step", S((), jnp.int32)), 0), ArgumentError,
     ("params/Dense_0/step", "int32", "floating-point", "nnx.Param")),
    ("a boolean leaf", lambda: gj.init(with_leaf("mask", S((4,), jnp.bool_)), 0), ArgumentError,
     ("params/Dense_0/mask", "bool")),
    ("a PRNG key leaf", lambda: gj.init(with_leaf("rng", jax.eval_shape(lambda: jax.random.key(0))), 0),
     ArgumentError, ("params/Dense_0/rng", "key", "floating-point")),
    ("a float64 leaf without x64", lambda: gj.init(with_leaf("kernel", S((4, 4), np.float64)), 0), ArgumentError,
     ("params/Dense_0/kernel", "float64", "jax_enable_x64")),
    ("a leaf that is no array", lambda: gj.init(with_leaf("name", "dense"), 0), ArgumentTypeError,
     ("params/Dense_0/name", "ShapeDtypeStruct")),
    ("an empty tree", lambda: gj.init({}, 0), ArgumentError, ("no leaves", "eval_shape")),
    ("a negative seed", lambda: gj.init(tree(), -1), ArgumentError, ("seed", "-1")),
    ("a bool seed", lambda: gj.init(tree(), True), ArgumentTypeError, ("seed", "True")),
    ("two leaves with one path", lambda: gj.init({"a/b": S((2,), jnp.float32), "a": {"b": S((2,), jnp.float32)}}, 0),
     ArgumentError, ("'a/b'", "unique")),
    ("a leaf with no default and no rule", lambda: gj.init(with_leaf("w", S((4, 4), jnp.float32)), 0),
     InitializerError, ("params/Dense_0/w", "rules=", "'^params/Dense_0/w$'")),
    ("a 1-D kernel", lambda: gj.init(with_leaf("kernel", S((4,), jnp.float32)), 0), InitializerError,
     ("params/Dense_0/kernel", "2 dimensions")),
    ("a rule matching nothing", lambda: gj.init(tree(), 0, rules={"Dense_9/kernel": "zeros"}), ArgumentError,
     ("'Dense_9/kernel'", "matches no leaf", "params/Dense_0")),
    ("a JAX initializer function as a rule",
     lambda: gj.init(tree(), 0, rules={"kernel": jax.nn.initializers.lecun_normal()}), ArgumentTypeError,
     ("'kernel'", "gpuinit initializers", "own stream")),
    ("an unknown initializer name", lambda: gj.init(tree(), 0, rules={"kernel": "lecun"}), InitializerError,
     ("'kernel'", "lecun", "zeros")),
    ("a bad pattern", lambda: gj.init(tree(), 0, rules={"kernel(": "zeros"}), ArgumentError,
     ("'kernel('", "regular expression")),
    ("rules of the wrong type", lambda: gj.init(tree(), 0, rules="kernel"), ArgumentTypeError, ("rules", "dict")),
    ("an initializer the dtype cannot hold",
     lambda: gj.init(with_leaf("kernel", S((4, 4), jnp.float16)), 0, rules={"kernel": gpuinit.init.Normal(1e5)}),
     InitializerError, ("params/Dense_0/kernel", "float16")),
    ("shardings missing a leaf",
     lambda: gj.init(tree(), 0, shardings={"params": {"Dense_0": {"kernel": NamedSharding(mesh8(), P())}}}),
     ArgumentError, ("tree of abstract", "missing", "params/Dense_0/bias")),
    ("shardings with an extra leaf",
     lambda: gj.init(tree(), 0, shardings={"params": {"Dense_0": {"kernel": None, "bias": None, "b2": None}}}),
     ArgumentError, ("tree of abstract", "unexpected", "params/Dense_0/b2")),
    ("a PartitionSpec for shardings", lambda: gj.init(tree(), 0, shardings=P("x")), ArgumentTypeError,
     ("PartitionSpec", "NamedSharding(mesh")),
    ("a PartitionSpec as a leaf's sharding",
     lambda: gj.init(tree(), 0, shardings={"params": {"Dense_0": {"kernel": P("x"), "bias": None}}}),
     ArgumentTypeError, ("params/Dense_0/kernel", "the PartitionSpec P('x',)", "NamedSharding(mesh, s)",
                         "nn.get_sharding")),
    ("a mesh axis that does not divide a dimension",
     lambda: gj.init(with_leaf("bias", S((10,), jnp.float32)), 0, shardings=NamedSharding(mesh8(), P("x"))),
     ShapeError, ("params/Dense_0/bias", "dimension 0 (10)", "('x',)", "8 parts", "pad")),
    ("a spec longer than the leaf's rank",
     lambda: gj.init(tree(), 0, shardings=NamedSharding(mesh8(), P(None, "x"))), ShapeError,
     ("params/Dense_0/bias", "(8,)", "1 dimensions", "PartitionSpec")),
    ("parameters that do not fit", lambda: gj.init({"kernel": S((1 << 22, 1 << 20), jnp.float32)}, 0),
     OutOfMemoryError, ("16.00 TiB", "Nothing was allocated", "gpuinit.jax.plan")),
]


@pytest.mark.parametrize("what,call,error,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly_and_allocates_nothing(what, call, error, words):
    gc.collect()
    before = store.live_bytes()
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, GpuInitError)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
    gc.collect()
    assert store.live_bytes() == before


def test_a_plan_that_does_not_fit_says_so_without_raising():
    plan = gj.plan({"kernel": S((1 << 22, 1 << 20), jnp.float32)})
    assert not plan.fits and "fits: no" in str(plan)
