"""Sequential draws from one stream (gpuinit.draws): what custom initializers and nd.random use."""

import threading

import numpy as np
import pytest

import gpuinit
from gpuinit import draws, nd, streams
from gpuinit.backend import to_numpy
from gpuinit.errors import ArgumentError, InitializerError
from gpuinit.streams import Fill

from .streams.common import gen


def test_stream_draws_are_sequential_and_block_aligned():
    key = streams.derive_key(1, "s")
    s = draws.Stream(key)
    a = s.draw(Fill.uniform(0, 1), (3,), np.float32)  # 2 words, padded to 4
    b = s.draw(Fill.uniform(0, 1), (2,), np.float32)
    assert np.array_equal(a, gen(Fill.uniform(0, 1), key, 3))
    assert np.array_equal(b, gen(Fill.uniform(0, 1), key, 2, offset=4))


def test_every_family_advances_the_stream_by_its_words_rounded_up_to_blocks(device):
    key = streams.derive_key(2, "s")
    s = draws.Stream(key)
    dev = gpuinit.as_device(device)
    got = [s.draw(Fill.normal(0.5, 2.0), (3,), np.float64, dev),           # 2 pairs x 2 words: 4
           s.draw(Fill.truncated_normal(0, 1, -2, 2), (5,), "float32", dev),  # 5 words, padded to 8
           s.draw(Fill.constant(7.0), (2, 2), np.float32, dev),            # no words
           s.draw(Fill.uniform(-1, 1), (2, 3), np.float16, dev)]           # 3 words, padded to 4
    expected = [gen(Fill.normal(0.5, 2.0), key, 3, np.float64),
                gen(Fill.truncated_normal(0, 1, -2, 2), key, 5, offset=4),
                np.full((2, 2), 7.0, np.float32),
                gen(Fill.uniform(-1, 1), key, 6, np.float16, offset=12).reshape(2, 3)]
    for g, e in zip(got, expected):
        g = to_numpy(g)
        assert g.shape == e.shape and g.dtype == e.dtype
        assert np.array_equal(g, e)


def test_a_refused_draw_does_not_advance_the_stream():
    key = streams.derive_key(3, "s")
    s = draws.Stream(key)
    with pytest.raises(InitializerError, match="a random draw has dtype int32"):
        s.draw(Fill.normal(0, 1), (4,), np.int32)
    with pytest.raises(ArgumentError, match="shape"):
        s.draw(Fill.normal(0, 1), (-1, 4), np.float32)
    with pytest.raises(InitializerError, match="infinite"):
        s.draw(Fill.normal(0, 1e5), (4,), np.float16)
    assert np.array_equal(s.draw(Fill.normal(0, 1), (4,), np.float32), gen(Fill.normal(0, 1), key, 4))


def test_the_active_stream_nests_and_belongs_to_its_thread():
    outer, inner = draws.Stream((1, 2)), draws.Stream((3, 4))
    seen_by_other = []
    assert draws.active_stream() is None
    with outer:
        assert draws.active_stream() is outer
        with inner:
            assert draws.active_stream() is inner
            other = threading.Thread(target=lambda: seen_by_other.append(draws.active_stream()))
            other.start()
            other.join()
        assert draws.active_stream() is outer
    assert draws.active_stream() is None
    assert seen_by_other == [None]


def test_nd_random_inside_a_stream_draws_from_it_and_takes_no_global_seed():
    key = streams.derive_key(4, "hook")
    streams.seed(70)
    with draws.Stream(key):
        a = nd.random.uniform(shape=(4,), device="cpu")
        b = nd.random.normal(2.0, 0.5, shape=(3,), device="cpu")
    assert np.array_equal(a, gen(Fill.uniform(0, 1), key, 4))
    assert np.array_equal(b, gen(Fill.normal(2.0, 0.5), key, 3, offset=4))
    assert streams.next_seed() == 70


def test_outside_a_stream_each_draw_takes_the_next_global_seed():
    streams.seed(21)
    assert draws.active_or_new_stream("label").key == streams.derive_key(21, "label")
    drawn = nd.random.truncated_normal(shape=(6,), device="cpu")
    assert np.array_equal(drawn, gen(Fill.truncated_normal(0, 1, -2, 2), streams.derive_key(22, "nd.random"), 6))


def test_a_failed_unseeded_draw_gives_its_seed_back():
    gpuinit.seed(5)
    first = nd.random.uniform(shape=(4,), device="cpu")
    gpuinit.seed(5)
    with pytest.raises(InitializerError):
        nd.random.uniform(shape=(4,), dtype="int32", device="cpu")
    assert np.array_equal(nd.random.uniform(shape=(4,), device="cpu"), first)
