"""sharding.fill_pieces: named element ranges filled into caller-owned memory, the numbers of
gpuinit's own initialization; and sharding.dim0_range."""

import numpy as np
import pytest

import gpuinit
from gpuinit import init, nn, sharding
from gpuinit.errors import GpuInitError, InitializerError


def _net(initializer):
    net = nn.Dense(7, in_units=5, weight_initializer=initializer, bias_initializer=init.Normal(0.3))
    net.initialize(device="cpu", seed=21)
    return {"weight": np.asarray(net.weight.data()), "bias": np.asarray(net.bias.data())}


@pytest.mark.parametrize("initializer", [init.Uniform(0.5), init.Xavier(), init.Orthogonal()],
                         ids=["uniform", "xavier", "orthogonal (a Python hook)"])
def test_pieces_equal_gpuinits_own_parameters_whole_and_in_ranges(initializer):
    want = _net(initializer)
    for name, shape, how in (("weight", (7, 5), initializer), ("bias", (7,), init.Normal(0.3))):
        whole = np.empty(int(np.prod(shape)), np.float32)
        sharding.fill_pieces(gpuinit.cpu(), [(whole, name, shape, how)], 21)
        assert np.array_equal(whole, want[name].reshape(-1))
        for start, stop in ((0, 3), (3, 4), (4, whole.size), (2, 2)):
            buf = np.full(100, -7.0, np.float32)  # a bigger buffer: only the range is written
            out = buf[10:10 + stop - start]
            sharding.fill_pieces(gpuinit.cpu(), [sharding.Piece(out, name, shape, how, start)], 21)
            assert np.array_equal(out, whole[start:stop])
            assert (buf[:10] == -7).all() and (buf[10 + stop - start:] == -7).all()


def test_many_pieces_in_one_call_and_their_errors():
    a, b = np.empty(6, np.float32), np.empty(4, np.float64)
    sharding.fill_pieces(gpuinit.cpu(), [(a, "x", (2, 3), init.Normal(1.0)), (b, "y", (4,), init.One())], 0)
    one = np.empty(6, np.float32)
    sharding.fill_pieces(gpuinit.cpu(), [(one, "x", (2, 3), init.Normal(1.0))], 0)
    assert np.array_equal(a, one) and (b == 1).all()
    with pytest.raises(GpuInitError, match="'x'.*outside its 6 elements"):
        sharding.fill_pieces(gpuinit.cpu(), [(np.empty(4, np.float32), "x", (2, 3), init.Zero(), 3)], 0)
    with pytest.raises(InitializerError, match="fan_in.*'v'"):
        sharding.fill_pieces(gpuinit.cpu(), [(np.empty(3, np.float32), "v", (3,), init.Xavier())], 0)
    with pytest.raises(InitializerError, match="'h'.*float16"):
        sharding.fill_pieces(gpuinit.cpu(), [(np.empty(3, np.float16), "h", (3,), init.Uniform(1e6))], 0)


def test_dim0_range_is_torch_chunk():
    assert [sharding.dim0_range((7, 3), r, 3) for r in range(3)] == [(0, 9), (9, 18), (18, 21)]
    assert [sharding.dim0_range((2, 4), r, 3) for r in range(3)] == [(0, 4), (4, 8), (8, 8)]
    assert [sharding.dim0_range((), r, 2) for r in range(2)] == [(0, 1), (1, 1)]


class _Boom(init.Initializer):
    def _init_weight(self, name, arr):
        raise ValueError("boom")


class _AnswersNumber(init.Initializer):
    def fill_for(self, desc):
        return 42


@pytest.mark.parametrize("initializer, words", [
    (_Boom(), r"parameter 'w' \(shape \(2, 3\)\): its initializer failed: ValueError: boom"),
    (_AnswersNumber(), r"parameter 'w': initializer _AnswersNumber\(\) answered 42; fill_for must return"),
], ids=["a failing Python hook", "an answer that is no fill"])
def test_pieces_and_parameters_report_a_bad_initializer_in_the_same_words(initializer, words):
    with pytest.raises(InitializerError, match=words):
        sharding.fill_pieces(gpuinit.cpu(), [(np.empty(6, np.float32), "w", (2, 3), initializer)], 0)
    p = gpuinit.Parameter("w", shape=(2, 3), init=initializer)
    with pytest.raises(InitializerError, match=words):
        p.initialize(device="cpu", seed=0)
    assert not p.initialized
