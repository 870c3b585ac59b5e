"""Block behaviours Gluon code relies on: hooks, hybrid layers, warnings about unregistered blocks."""

import warnings

import numpy as np
import pytest

from gpuinit import nn


def test_forward_hooks_run_once_per_call_and_detach():
    calls = {"pre": 0, "post": 0}
    block = nn.Dense(10)
    block.initialize(device="cpu")
    post = block.register_forward_hook(lambda b, x, y: calls.__setitem__("post", calls["post"] + 1))
    pre = block.register_forward_pre_hook(lambda b, x: calls.__setitem__("pre", calls["pre"] + 1))
    x = np.ones((3, 5), np.float32)
    block(x)  # the first call also runs the shape-only pass: hooks see only the real one
    assert calls == {"pre": 1, "post": 1}
    post.detach()
    block(x)
    assert calls == {"pre": 2, "post": 1}
    pre.detach()
    block(x)
    assert calls == {"pre": 2, "post": 1}


def test_a_hook_sees_the_input_and_output():
    seen = []
    block = nn.Dense(2, in_units=3)
    block.initialize(device="cpu")
    block.register_forward_hook(lambda b, args, out: seen.append((b, args[0].shape, out.shape)))
    block(np.ones((4, 3), np.float32))
    assert seen == [(block, (4, 3), (4, 2))]


def test_built_in_layers_are_hybrid_blocks():
    for layer in (nn.Dense(2), nn.Conv2D(2, 3), nn.MaxPool2D(), nn.BatchNorm(), nn.Activation("relu"),
                  nn.Dropout(0.5), nn.Flatten(), nn.Embedding(3, 2), nn.LayerNorm()):
        assert isinstance(layer, nn.HybridBlock), layer


def test_hybridizing_a_sequential_of_hybrid_blocks_advises_hybrid_sequential():
    net = nn.Sequential()
    net.add(nn.Dense(20))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.hybridize()
    assert len(caught) == 1 and "HybridSequential" in str(caught[0].message)


def test_blocks_hidden_in_containers_are_warned_about():
    class InList(nn.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.layers = [nn.Dense(i * 10 + 10) for i in range(3)]

    class InDict(nn.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.layers = {"a": [nn.Dense(10), nn.Dense(10)]}

    class Registered(nn.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.layers = nn.Sequential()
            self.layers.add(nn.Dense(10))
            self.data = {"a": "4", "b": 123}

    for cls, expected in ((InList, 1), (InDict, 1), (Registered, 0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cls().collect_params()
        assert len(caught) == expected, (cls, [str(w.message) for w in caught])
    with pytest.warns(UserWarning, match="'layers'.*not registered"):
        InList().collect_params()


def test_a_hybrid_block_takes_scalars_and_lists_like_a_block():
    class Add(nn.HybridBlock):
        def hybrid_forward(self, F, a, b):
            a = sum(a) if isinstance(a, list) else a
            b = sum(b) if isinstance(b, list) else b
            return a + b

    add = Add()
    assert np.array_equal(add(np.ones(3, np.float32), 1), np.full(3, 2.0))
    assert np.array_equal(add([np.ones(2), np.ones(2)], [np.ones(2)] * 3), np.full(2, 5.0))


def test_a_dense_layer_of_zero_units_is_built_but_not_run():
    layer = nn.Dense(0)  # Gluon accepts it (models build Dense(i * 10) in loops from i = 0)
    layer.initialize(device="cpu")
    with pytest.raises(ValueError, match="units is 0"):
        layer(np.ones((2, 3), np.float32))
    assert layer.weight.deferred
