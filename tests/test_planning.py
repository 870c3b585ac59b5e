"""Memory plans (gpuinit.planning): bytes, layers and fits, before anything is allocated. The
model zoo's own tests are in test_models.py."""

import gc
import time

import numpy as np
import pytest

import gpuinit
from gpuinit import models, nd, nn, store
from gpuinit.errors import PlanError


def test_planning_llama2_70b_is_fast_and_allocates_nothing():
    gc.collect()
    before = store.live_bytes()
    t = time.perf_counter()
    p = gpuinit.plan(models.get("llama2-70b"), (1, 16), input_dtype="int64", device="cpu")
    assert time.perf_counter() - t < 1.0
    assert p.num_elements == 68_976_648_192 and p.parameter_bytes == 4 * 68_976_648_192
    assert store.live_bytes() == before
    if p.free_bytes is not None and p.free_bytes < p.total_bytes:
        assert not p.fits and p.missing_bytes == p.total_bytes - p.free_bytes


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet18", "gpt2-small"])
def test_planned_bytes_equal_allocated_bytes(name, device):
    net = models.get(name)
    _, shape, dtype = models.MODELS[name]
    if name == "gpt2-small":
        shape = (1, 8)
    x = (nd.array(np.zeros(shape), device=device, dtype="int64") if dtype == "int64"
         else nd.random.uniform(shape=shape, device=device))
    net.initialize(device=device)
    p = gpuinit.plan(net, x)
    net(x)
    assert store.last_materialization["bytes"] == p.total_bytes
    assert sum(e.bytes for e in p.parameters) == net.collect_params().nbytes


def test_plan_reports_layers_fans_and_initializers():
    net = models.mlp()
    p = gpuinit.plan(net, (2, 20), device="cpu")
    w0 = p.parameters[0]
    assert (w0.path, w0.shape, w0.fan_in, w0.fan_out, w0.scale) == ("0.weight", (256, 20), 20, 256, 0.07)
    assert "Uniform" in w0.initializer
    assert [(l.path, l.output_shape, l.parameters) for l in p.layers] == [
        ("", (2, 10), 0), ("0", (2, 256), 256 * 20 + 256), ("1", (2, 10), 10 * 256 + 10)]
    assert p.output_shape == (2, 10) and p.fits
    assert "total: 7,946 parameters" in p.summary()


def test_an_unplannable_user_block_is_named():
    class Peeks(nn.Block):
        def __init__(self):
            super().__init__()
            self.d = nn.Dense(3)

        def forward(self, x):
            if float(np.asarray(x).sum()) > 0:  # needs values: cannot be planned
                return self.d(x)
            return x

    net = Peeks()
    with pytest.raises(PlanError, match=net.name):
        gpuinit.plan(net, (2, 4), device="cpu")
    assert net.d.weight.shape == (3, 0)


def test_materializing_what_does_not_fit_fails_before_allocating():
    net = models.get("llama2-70b")
    net.initialize(device="cpu")
    p = gpuinit.plan(net, (1, 4), input_dtype="int64")
    if p.fits:
        pytest.skip("this machine has room for 257 GiB")
    gc.collect()
    before = store.live_bytes()
    with pytest.raises(gpuinit.OutOfMemoryError, match="short"):
        net(np.zeros((1, 4), np.int64))
    assert store.live_bytes() == before
    assert not any(q.initialized for q in net.collect_params().values())
