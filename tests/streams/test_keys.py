"""Seeds and keys (gpuinit.streams.keys, gpuinit.streams.seedseq): each parameter's key is NumPy's
SeedSequence of (seed, path bytes), one at a time or batched, and unseeded uses count up from the
global seed."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gpuinit
from gpuinit import GpuInitError, nd, nn, streams
from gpuinit.errors import ArgumentError, ArgumentTypeError
from gpuinit.streams import Fill

from .common import gen


def seed_sequence_key(seed, path):
    words = np.random.SeedSequence(seed, spawn_key=tuple(path.encode("utf-8"))).generate_state(2, np.uint64)
    return tuple(int(w) for w in words)


def test_keys_depend_on_seed_and_path_only():
    assert streams.derive_key(0, "0.weight") == streams.derive_key(0, "0.weight")
    assert streams.derive_key(0, "0.weight") != streams.derive_key(0, "1.weight")
    assert streams.derive_key(0, "0.weight") != streams.derive_key(1, "0.weight")
    expected = np.random.SeedSequence(7, spawn_key=tuple(b"0.bias")).generate_state(2, np.uint64)
    assert streams.derive_key(7, "0.bias") == tuple(int(k) for k in expected)


def test_seed_validation():
    with pytest.raises(GpuInitError, match="non-negative integer"):
        streams.seed(-1)
    with pytest.raises(GpuInitError, match="non-negative integer"):
        streams.seed(1.5)


def test_global_seed_counts_unseeded_uses():
    streams.seed(100)
    assert [streams.next_seed() for _ in range(3)] == [100, 101, 102]
    streams.seed(100)
    assert streams.next_seed() == 100


@settings(max_examples=60)
@given(seed=st.one_of(st.integers(0, 2**40), st.integers(0, 2**200)),
       paths=st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=40))
def test_batched_keys_equal_seed_sequence(seed, paths):
    """derive_keys (vectorized over paths, gpuinit.seedseq) gives NumPy's SeedSequence keys."""
    expected = [tuple(int(w) for w in np.random.SeedSequence(seed, spawn_key=tuple(p.encode("utf-8")))
                      .generate_state(2, np.uint64)) for p in paths]
    assert streams.derive_keys(seed, paths) == expected
    from gpuinit.streams import seedseq
    assert [tuple(map(int, row)) for row in seedseq.derive_keys(seed, paths)] == expected


def test_batched_keys_take_empty_paths_and_numpy_seeds():
    """An empty path (a parameter initialized alone under the name "") and NumPy integer seeds
    give the same keys as one at a time; so does an empty list of paths."""
    paths = ["", "0.weight", "é.bias"] * 5
    assert streams.derive_keys(np.uint64(2**64 - 1), paths) == [seed_sequence_key(2**64 - 1, p) for p in paths]
    assert streams.derive_keys(3, []) == []


@pytest.mark.parametrize("value,expected", [(0, 0), (np.int8(3), 3), (np.uint64(2**64 - 1), 2**64 - 1),
                                            (2**100, 2**100)])
def test_check_seed_takes_python_and_numpy_integers(value, expected):
    got = streams.check_seed(value)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value,error", [(True, ArgumentTypeError), (np.bool_(False), ArgumentTypeError),
                                         (1.0, ArgumentTypeError), ("1", ArgumentTypeError),
                                         (None, ArgumentTypeError), (-1, ArgumentError),
                                         (np.int64(-5), ArgumentError)])
def test_check_seed_refuses_the_rest(value, error):
    with pytest.raises(error, match="seed must be a non-negative integer"):
        streams.check_seed(value)


def test_a_seed_given_back_is_the_next_one_again_only_if_it_was_the_last():
    streams.seed(50)
    taken = streams.next_seed()
    streams.give_back_seed(taken)
    assert streams.next_seed() == 50
    assert streams.next_seed() == 51
    streams.give_back_seed(50)  # not the last one taken: nothing changes
    assert streams.next_seed() == 52


def test_call_seed_hands_back_a_drawn_seed_only_when_the_call_fails():
    streams.seed(70)
    with pytest.raises(RuntimeError):
        with streams.call_seed() as drawn:
            raise RuntimeError("the call failed")
    with streams.call_seed() as again:
        pass
    assert drawn == again == 70 and streams.next_seed() == 71
    with pytest.raises(RuntimeError):
        with streams.call_seed(5) as given:
            raise RuntimeError("the call failed")
    assert given == 5 and streams.next_seed() == 72  # an explicit seed takes nothing from the count
    with pytest.raises(ArgumentError, match="seed must be a non-negative integer"):
        with streams.call_seed(-1):
            pass


def test_unseeded_initialize_and_nd_random_share_one_count():
    """After gpuinit.seed(n), the k-th unseeded initialize() or nd.random call uses seed n + k;
    an explicit seed leaves the count alone."""
    gpuinit.seed(10)
    layer = nn.Dense(3, in_units=2)
    layer.initialize(device="cpu")
    assert layer.weight.rng_key == streams.derive_key(10, "weight")
    pinned = nn.Dense(3, in_units=2)
    pinned.initialize(device="cpu", seed=999)
    drawn = nd.random.uniform(shape=(5,), device="cpu")
    assert np.array_equal(drawn, gen(Fill.uniform(0, 1), streams.derive_key(11, "nd.random"), 5))
