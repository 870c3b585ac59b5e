"""HybridBlock: hybrid_forward(F, x, **params) with F = gpuinit.nd, through deferred
initialization and gpuinit.plan."""

import numpy as np
import pytest

import gpuinit
from gpuinit import init, nd, nn
from gpuinit.errors import PlanError


class Scaled(nn.HybridBlock):
    """A dense layer that infers its input size, then a learned scale of known shape."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.dense = nn.Dense(units)
        self.scale = self.params.get("scale", shape=(units,), init=init.Constant(2))

    def hybrid_forward(self, F, x, scale):
        return F.relu(self.dense(x)) * scale


def test_parameters_come_in_by_name_and_f_is_nd():
    seen = {}

    class Probe(nn.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.weight = self.params.get("weight", shape=(3, 2))

        def hybrid_forward(self, F, x, weight):
            seen["F"], seen["weight"] = F, weight
            return F.dot(x, weight)

    probe = Probe()
    probe.initialize(device="cpu", seed=0)
    y = probe(np.ones((4, 3), np.float32))
    assert seen["F"] is nd and seen["weight"] is probe.weight.data() and y.shape == (4, 2)


def test_a_hybrid_block_initializes_deferred_and_plans():
    net = nn.HybridSequential()
    net.add(Scaled(4), nn.Dense(2))
    net.initialize(device="cpu", seed=1)
    net.hybridize()
    plan = gpuinit.plan(net, (3, 5))
    assert plan.output_shape == (3, 2) and net[0].dense.weight.shape == (4, 5)
    y = net(np.ones((3, 5), np.float32))
    assert y.shape == (3, 2) and np.all(net[0].scale.data() == 2)
    assert plan.parameter_bytes == net.collect_params().nbytes


def test_a_constant_in_a_hybrid_block():
    class AddConst(nn.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.value = np.asarray([[1, 2], [3, 4]])
            self.const = self.params.get_constant("const", self.value)

        def hybrid_forward(self, F, x, const):
            return x + const

    block = AddConst()
    block.initialize(device="cpu")
    assert np.array_equal(block(np.ones((2, 2), np.float32)), [[2, 3], [4, 5]])
    assert np.array_equal(block.const.data(), block.value)


def test_an_unknown_shape_in_hybrid_forward_is_named_and_changes_nothing():
    class Unknown(nn.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.weight = self.params.get("weight", shape=(0, 3))

        def hybrid_forward(self, F, x, weight):
            return F.dot(x, weight)

    block = Unknown(prefix="unknown_")
    block.initialize(device="cpu")
    with pytest.raises(PlanError, match=r"'unknown_weight'.*full shape"):
        block(np.ones((2, 5), np.float32))
    assert block.weight.deferred and block.weight.shape == (0, 3)


def test_hybrid_sequential_is_a_sequential_that_hybridizes():
    net = nn.HybridSequential()
    net.add(nn.Dense(10), nn.Dense(10), nn.Dense(10))
    assert isinstance(net, nn.HybridBlock) and isinstance(net, nn.Sequential)
    sliced = net[1:3]
    assert isinstance(sliced, nn.HybridSequential) and len(sliced) == 2 and sliced[0] is net[1]
    net.hybridize()
    net.hybridize(active=False, static_alloc=True)


def test_a_hybrid_block_without_hybrid_forward_says_so():
    block = nn.HybridBlock()
    block.initialize(device="cpu")
    with pytest.raises(NotImplementedError, match="hybrid_forward"):
        block(np.ones((1, 2), np.float32))


def test_inputs_a_hybrid_block_refuses_as_gluon_does():
    class Add(nn.HybridBlock):
        def hybrid_forward(self, F, a, b=None):
            return a if b is None else a + b

    add = Add()
    assert np.array_equal(add(np.ones(2, np.float32)), np.ones(2)) and add(np.ones(2), 1).tolist() == [2, 2]
    with pytest.raises(ValueError, match="at least one array"):
        add(None, None)
    add.hybridize()
    assert add(np.ones(2), None).tolist() == [1, 1]
    with pytest.raises(ValueError, match="input 1"):
        add(np.ones(2), 1)  # a hybridized block takes arrays only


class MyDense(nn.HybridBlock):
    """A dense layer whose infer_shape sets its weight's input size (as Gluon 2's custom layers)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.weight = self.params.get("weight", shape=(units, 0))

    def infer_shape(self, x, *args):
        self.weight.shape = (self.units, x.shape[1])

    def hybrid_forward(self, F, x, weight):
        return F.dot(x, weight.T)


def test_infer_shape_lets_a_hybrid_block_defer_its_own_parameters():
    net = nn.HybridSequential()
    net.add(MyDense(4), MyDense(2))
    net.initialize(device="cpu", seed=9)
    assert gpuinit.plan(net, (3, 5)).output_shape == (3, 2) and net[0].weight.shape == (4, 5)
    y = net(np.ones((3, 5), np.float32))
    assert y.shape == (3, 2) and net[1].weight.data().shape == (2, 4)


def test_a_block_with_its_own_infer_shape_called_before_initialize_says_to_initialize():
    from gpuinit.errors import UninitializedParameterError

    block = MyDense(4)
    with pytest.raises(UninitializedParameterError, match=r"'mydense\d+_weight' was never initialized.*initialize\(\)"):
        block(nd.ones((2, 3)))
    assert block.weight.shape == (4, 0)
    block.initialize(seed=0)
    assert block(nd.ones((2, 3))).shape == (2, 4)
