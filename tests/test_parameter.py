"""Parameters and parameter dictionaries (gpuinit.parameter), seen through their public
properties: declared, deferred and initialized states, the shape setter, data() and its errors,
and ParameterDict's get, path_of and nbytes."""

import numpy as np
import pytest

import gpuinit
from gpuinit import Parameter, nn, streams
from gpuinit.backend import to_numpy
from gpuinit.errors import (ArgumentError, ArgumentTypeError, DeferredInitializationError, ShapeError,
                            UninitializedParameterError)
from gpuinit.parameter import ParameterDict


def state(p):
    return {"requested": p.requested, "deferred": p.deferred, "initialized": p.initialized}


def test_a_declared_parameter_has_a_shape_and_nothing_else():
    p = Parameter("w", shape=(3, 0), dtype="float16", role="weight")
    assert state(p) == {"requested": False, "deferred": False, "initialized": False}
    assert (p.device, p.rng_key, p.path, p.request) == (None, None, None, None)
    assert p.shape == (3, 0) and not p.shape_known and p.size == 0 and p.nbytes == 0
    assert p.dtype == np.float16 and p.role == "weight" and p.grad_req == "write"
    assert repr(p) == "Parameter w (shape=(3, 0), dtype=float16)"
    with pytest.raises(UninitializedParameterError, match="'w' has not been initialized"):
        p.data()


def test_initialize_with_an_unknown_shape_defers():
    p = Parameter("w", shape=(3, 0))
    p.initialize(device="cpu", seed=3)
    assert state(p) == {"requested": True, "deferred": True, "initialized": False}
    assert p.device == gpuinit.cpu() and p.path == "w" and p.rng_key == streams.derive_key(3, "w")
    with pytest.raises(DeferredInitializationError, match=r"'w'.*\(3, 0\) is not fully known"):
        p.data()


def test_initialize_with_a_known_shape_initializes_at_once(device):
    p = Parameter("b", shape=(2, 3), init="ones")
    p.initialize(device=device, seed=1)
    assert state(p) == {"requested": True, "deferred": False, "initialized": True}
    assert p.device == gpuinit.as_device(device) and p.size == 6 and p.nbytes == 24
    data = p.data()
    assert data.shape == (2, 3) and data.dtype == np.float32 and p.data() is data
    assert np.array_equal(to_numpy(data), np.ones((2, 3), np.float32))
    host = p.data(device="cpu")  # a copy where the data is elsewhere, the array itself where not
    assert isinstance(host, np.ndarray) and np.array_equal(host, to_numpy(data))
    assert (host is data) == (device == "cpu")


def test_a_layer_parameter_goes_through_the_three_states():
    layer = nn.Dense(4)
    w = layer.weight
    assert state(w) == {"requested": False, "deferred": False, "initialized": False}
    layer.initialize(device="cpu", seed=2)
    assert state(w) == {"requested": True, "deferred": True, "initialized": False} and w.shape == (4, 0)
    layer(np.ones((2, 5), np.float32))
    assert state(w) == {"requested": True, "deferred": False, "initialized": True}
    assert w.shape == (4, 5) and w.data().shape == (4, 5) and w.path == "weight"


def test_the_shape_setter_fills_unknown_dimensions_only():
    p = Parameter("w", shape=(3, 0))
    p.shape = (3, 0)  # nothing new: allowed, nothing changes
    assert p.shape == (3, 0)
    for wrong in ((4, 5), (0, 5), (3, 5, 1), (3,)):
        with pytest.raises(ShapeError, match=r"'w' has shape \(3, 0\)"):
            p.shape = wrong
    with pytest.raises(ShapeError, match=r"\(3, -5\)"):
        p.shape = (3, -5)
    with pytest.raises(ArgumentTypeError):
        p.shape = (3, 2.5)
    assert p.shape == (3, 0)
    p.shape = (3, 5)
    assert p.shape == (3, 5) and p.shape_known and p.size == 15 and p.nbytes == 60
    with pytest.raises(ShapeError, match=r"\(3, 5\)"):
        p.shape = (3, 6)
    q = Parameter("q")  # no shape at all: any shape may be given once
    assert q.shape == ()
    q.shape = (7,)
    assert q.shape == (7,)


def test_setting_a_deferred_layer_shape_fixes_what_its_input_must_be():
    layer = nn.Dense(4)
    layer.initialize(device="cpu", seed=0)
    layer.weight.shape = (4, 7)
    with pytest.raises(ShapeError):
        layer(np.ones((2, 5), np.float32))
    assert layer(np.ones((2, 7), np.float32)).shape == (2, 4) and layer.weight.initialized


def test_an_initialized_parameter_keeps_its_shape():
    p = Parameter("w", shape=(2, 3), role="weight")
    p.initialize(device="cpu", seed=0)
    p.shape = (2, 3)
    with pytest.raises(ShapeError, match=r"\(2, 3\)"):
        p.shape = (2, 4)
    assert p.shape == (2, 3) and p.data().shape == (2, 3)


def test_parameter_dict_get_creates_with_the_prefix_and_a_role():
    params = ParameterDict(prefix="blk_")
    w = params.get("weight", shape=(2, 3))
    assert w.name == "blk_weight" and w.role == "weight" and w.shape == (2, 3)
    assert params.get("weight") is w  # created once
    assert params.get("scale").role == "default" and params.get("offset", role="bias").role == "bias"
    assert list(params) == ["blk_weight", "blk_scale", "blk_offset"] and len(params) == 3
    assert "blk_weight" in params and "weight" not in params and params["blk_weight"] is w
    with pytest.raises(ArgumentTypeError, match="ParameterDict.get: name must be a string"):
        params.get(3)


def test_parameter_dict_paths_and_bytes():
    shared = Parameter("s", shape=(10,))
    params = ParameterDict({"a": shared, "b": shared, "c": Parameter("c", shape=(3, 0)),
                            "d": Parameter("d", shape=(2, 2), dtype="float64")}, paths={"a": "enc.a"})
    assert params.path_of("a") == "enc.a" and params.path_of("b") == "b"  # the name, without a path
    assert params.nbytes == 10 * 4 + 0 + 4 * 8  # shared counted once, an unknown shape as 0
    with pytest.raises(ArgumentError, match="'x' must be a Parameter, got int"):
        ParameterDict({"x": 3})


def test_a_collected_parameter_dict_knows_each_path():
    net = nn.Sequential()
    net.add(nn.Dense(3, in_units=2), nn.Dense(1, in_units=3))
    params = net.collect_params()
    assert [params.path_of(name) for name in params] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert params.nbytes == (3 * 2 + 3 + 3 + 1) * 4
    params.initialize(device="cpu", seed=4)
    assert params[list(params)[2]].rng_key == streams.derive_key(4, "1.weight")
