"""Checkpoints: safetensors files that torch and the safetensors package read, loaded straight into
the arena as one all-or-nothing materialization, and every bad file refused with the network left
as it was."""

import gc
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import gpuinit
from gpuinit import checkpoint, dtypes, models, nd, nn, store
from gpuinit.backend import to_numpy
from gpuinit.errors import (CheckpointError, CheckpointNotFoundError, DeferredInitializationError, GpuInitError,
                            ShapeError)
from gpuinit.streams import CONTRACT_VERSION

safetensors = pytest.importorskip("safetensors")
from safetensors.numpy import load_file as st_load_file, save_file as st_save_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_BF16 = dtypes.bfloat16() is not None


def tiny_gpt(dtype="float32"):
    """GPT-2's structure (paths like h.0.c_attn.weight), a few kilobytes of parameters."""
    return models.gpt2("small", dtype=dtype, layers=2, width=16, heads=2, vocab=40, context=12)


def tokens():
    return np.arange(10, dtype=np.int64).reshape(2, 5) % 40


def bits(a):
    a = to_numpy(a)
    return a.view(f"u{a.itemsize}")


def values(net):
    params = net.collect_params()
    return {params.path_of(n): bits(p.data()).copy() for n, p in params.items()}


def observe(net):
    """Everything a failed load must leave as it was: each parameter's shape, dtype, state, key and
    values, and the live arena bytes (earlier tests' garbage collected first)."""
    gc.collect()
    state = []
    for name, p in net.collect_params().items():
        state.append((name, p.shape, p.dtype, p.initialized, p.deferred, p.requested, p.rng_key,
                      to_numpy(p.data()).tobytes() if p.initialized else None))
    return store.live_bytes(), state


@pytest.fixture
def saved(tmp_path):
    """A tiny GPT-2, initialized and run, and its file."""
    net = tiny_gpt()
    net.initialize(device="cpu", seed=3)
    net(tokens())
    path = tmp_path / "gpt.safetensors"
    net.save_parameters(path)
    return net, path


def mixed_target():
    """A network with an initialized layer and a deferred one (unknown in_units)."""
    net = nn.Sequential()
    net.add(nn.Dense(6, in_units=4), nn.Dense(3))
    net[0].initialize(device="cpu", seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.initialize(device="cpu", seed=12)
    return net


def mixed_source(tmp_path, dtype="float32", units=(6, 3)):
    net = nn.Sequential()
    net.add(nn.Dense(units[0], in_units=4, dtype=dtype), nn.Dense(units[1], in_units=units[0], dtype=dtype))
    net.initialize(device="cpu", seed=21)
    path = tmp_path / "mixed.safetensors"
    net.save_parameters(path)
    return net, path


def run_python(code, *args, env=None, check=True):
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                            text=True, env=full_env, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def write_raw(path, header, data=b"", pad=True):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    if pad:
        text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


# --- round trips --------------------------------------------------------------------------------

def test_round_trip_in_a_fresh_process_into_a_deferred_network(tmp_path):
    kinds = ["float32", "float16"] + (["bfloat16"] if HAS_BF16 else [])
    for dtype in kinds:
        net = tiny_gpt(dtype)
        net.initialize(device="cpu", seed=5)
        net(tokens())
        net.save_parameters(tmp_path / f"{dtype}.safetensors")
        np.savez(tmp_path / f"{dtype}.npz", **values(net))
    out = run_python("""
        import sys, numpy as np
        from gpuinit import models
        folder, kinds = sys.argv[1], sys.argv[2:]
        for dtype in kinds:
            net = models.gpt2("small", dtype=dtype, layers=2, width=16, heads=2, vocab=40, context=12)
            net.initialize(device="cpu", seed=999)          # deferred: every width unknown
            assert net.h[0].c_attn.weight.shape == (48, 0) and net.h[0].c_attn.weight.deferred
            net.load_parameters(f"{folder}/{dtype}.safetensors")
            want = np.load(f"{folder}/{dtype}.npz")
            params = net.collect_params()
            got = {params.path_of(n): p for n, p in params.items()}
            assert set(got) == set(want.files), (sorted(got), want.files)
            for path, p in got.items():
                a = p.data()
                assert p.initialized and a.dtype.name == dtype, (path, a.dtype)
                assert np.array_equal(a.view(f"u{a.itemsize}"), want[path]), path
            y = net(np.arange(10, dtype=np.int64).reshape(2, 5) % 40)  # no first-forward step needed
            print(dtype, "ok", y.shape)
        """, tmp_path, *kinds)
    assert out.stdout.count(" ok ") == len(kinds), out.stdout


def test_file_opens_with_the_safetensors_package_and_records_how_it_was_made(saved):
    net, path = saved
    loaded = st_load_file(str(path))
    want = values(net)
    assert set(loaded) == set(want)
    assert "h.0.c_attn.weight" in loaded and "wte.weight" in loaded
    for key, array in loaded.items():
        assert np.array_equal(bits(array), want[key]), key
    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert meta["gpuinit.version"] == gpuinit.__version__
    assert meta["gpuinit.stream_contract"] == str(CONTRACT_VERSION)
    assert meta["gpuinit.seed"] == "3"
    info = json.loads(meta["gpuinit.parameters"])
    assert info["h.0.c_attn.weight"] == {"initializer": "Normal(sigma=0.02)", "role": "weight", "seed": 3}
    assert info["h.0.c_attn.bias"]["role"] == "bias"


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_file_opens_with_safetensors_torch_with_the_same_values(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    if dtype == "bfloat16" and not HAS_BF16:
        pytest.skip("bfloat16 needs ml_dtypes")
    net = tiny_gpt(dtype)
    net.initialize(device="cpu", seed=8)
    net(tokens())
    net.save_parameters(tmp_path / "t.safetensors")
    loaded = load_file(str(tmp_path / "t.safetensors"))
    want = values(net)
    for key, tensor in loaded.items():
        assert tensor.dtype == getattr(torch, dtype)
        got = tensor.view(torch.int16 if tensor.element_size() == 2 else torch.int32).numpy()
        assert np.array_equal(got.view(want[key].dtype), want[key]), key


def test_files_written_by_torch_and_numpy_load_into_a_deferred_network(tmp_path):
    source = tiny_gpt()
    source.initialize(device="cpu", seed=4)
    source(tokens())
    arrays = {k: to_numpy(p.data()) for k, p in
              ((source.collect_params().path_of(n), p) for n, p in source.collect_params().items())}
    st_save_file(arrays, str(tmp_path / "np.safetensors"))
    files = [tmp_path / "np.safetensors"]
    try:
        import torch
        from safetensors.torch import save_file
        save_file({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, str(tmp_path / "pt.safetensors"))
        files.append(tmp_path / "pt.safetensors")
    except ImportError:
        pass
    for path in files:
        net = tiny_gpt()
        net.load_parameters(path, device="cpu")  # never initialized: the load initializes it
        got = values(net)
        assert set(got) == set(arrays) and all(np.array_equal(got[k], bits(v)) for k, v in arrays.items())
        assert np.array_equal(net(tokens()), source(tokens()))
        assert net.h[0].c_attn.weight.request.seed is None  # a foreign file records no seed


def test_round_trip_on_each_device(tmp_path, device):
    net = tiny_gpt("float16")
    net.initialize(device=device, seed=6)
    net(nd.array(tokens(), device=device, dtype="int64"))
    net.save_parameters(tmp_path / "d.safetensors")
    back = tiny_gpt("float16")
    back.initialize(device=device, seed=1)
    back.load_parameters(tmp_path / "d.safetensors")
    assert str(back.wte.weight.device) == str(net.wte.weight.device)
    assert all(np.array_equal(a, b) for a, b in zip(values(back).values(), values(net).values()))
    to32 = tiny_gpt("float32")
    to32.load_parameters(tmp_path / "d.safetensors", device=device, cast_dtype=True)
    want = to_numpy(net.h[1].c_fc.weight.data()).astype(np.float32)
    assert np.array_equal(to_numpy(to32.h[1].c_fc.weight.data()), want)
    part = checkpoint.load_shard(tmp_path / "d.safetensors", 2, 3, device=device)
    flat = to_numpy(net.h[0].c_attn.weight.data()).reshape(-1)
    start, stop = gpuinit.sharding.shard_range(flat.size, 2, 3)
    assert np.array_equal(bits(part["h.0.c_attn.weight"]), bits(flat[start:stop]))
    arrays = {"a": nd.array(np.arange(5.0), device=device)}
    nd.save(tmp_path / "a.safetensors", arrays)
    assert np.array_equal(nd.load(tmp_path / "a.safetensors")["a"], np.arange(5.0))


def test_loading_replaces_an_initialized_networks_values_and_keeps_its_keys(saved):
    net, path = saved
    other = tiny_gpt()
    other.initialize(device="cpu", seed=77)
    other(tokens())
    keys = {n: p.rng_key for n, p in other.collect_params().items()}
    before = store.live_bytes()
    other.load_parameters(path)
    assert {k: v.tobytes() for k, v in values(other).items()} == {k: v.tobytes() for k, v in values(net).items()}
    assert {n: p.rng_key for n, p in other.collect_params().items()} == keys
    # one new arena for the load; the old one is freed with its last view
    assert store.live_bytes() == before


def test_forward_passes_racing_a_load_see_the_old_or_the_new_network_never_a_mix(saved):
    import threading
    net, path = saved
    other = tiny_gpt()
    other.initialize(device="cpu", seed=50)
    x = tokens()
    old, new = other(x).copy(), net(x)
    seen, errors, stop = [], [], threading.Event()

    def forwards():
        try:
            while not stop.is_set():
                y = other(x)
                seen.append("old" if np.array_equal(y, old) else "new" if np.array_equal(y, new) else "mixed")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=forwards)
    worker.start()
    try:
        while not seen and worker.is_alive():
            time.sleep(0.001)
        other.load_parameters(path)
        count = len(seen)
        while len(seen) < count + 2 and worker.is_alive():
            time.sleep(0.001)
    finally:
        stop.set()
        worker.join()
    assert not errors and "mixed" not in seen and seen[0] == "old" and seen[-1] == "new"


def test_a_never_initialized_network_takes_the_files_seed(saved):
    net, path = saved
    fresh = tiny_gpt()
    fresh.load_parameters(path, ctx="cpu")
    assert fresh.h[1].c_fc.weight.request.seed == 3
    assert fresh.h[1].c_fc.weight.rng_key == net.h[1].c_fc.weight.rng_key
    assert str(fresh.h[1].c_fc.weight.device) == "cpu"


def test_cast_dtype_converts_or_takes_the_saved_dtype(tmp_path):
    source, path = mixed_source(tmp_path, "float16")
    net = mixed_target()
    net.load_parameters(path, cast_dtype=True)
    assert net[1].weight.dtype == np.float32
    assert np.array_equal(net[1].weight.data(), to_numpy(source[1].weight.data()).astype(np.float32))
    net = mixed_target()
    net.load_parameters(path, cast_dtype=True, dtype_source="saved")
    assert net[1].weight.dtype == np.float16 and net[1].weight.data().dtype == np.float16
    assert np.array_equal(bits(net[1].weight.data()), bits(source[1].weight.data()))


def test_block_parameter_dict_and_nd_names_follow_gluon(tmp_path):
    net = nn.Sequential(prefix="model_")
    with net.name_scope():
        net.add(nn.Dense(3, in_units=2), nn.Dense(2, in_units=3))
    net.initialize(device="cpu", seed=1)
    params = net.collect_params()
    params.save(tmp_path / "full.safetensors")
    assert sorted(st_load_file(str(tmp_path / "full.safetensors"))) == sorted(params.keys())
    params.save(tmp_path / "stripped.safetensors", strip_prefix="model_")
    assert all(not k.startswith("model_") for k in st_load_file(str(tmp_path / "stripped.safetensors")))
    with pytest.raises(GpuInitError, match="strip_prefix"):
        params.save(tmp_path / "bad.safetensors", strip_prefix="other_")
    assert not (tmp_path / "bad.safetensors").exists()

    twin = nn.Sequential(prefix="model_")
    with twin.name_scope():
        twin.add(nn.Dense(3), nn.Dense(2))
    twin.collect_params().load(tmp_path / "stripped.safetensors", device="cpu", restore_prefix="model_")
    assert np.array_equal(twin[1].weight.data(), net[1].weight.data())
    # Block.load_parameters reads a ParameterDict.save file by name, the block's prefix restored
    again = nn.Sequential(prefix="model_")
    with again.name_scope():
        again.add(nn.Dense(3), nn.Dense(2))
    again.load_parameters(tmp_path / "stripped.safetensors", device="cpu")
    assert np.array_equal(again[0].bias.data(), net[0].bias.data())


def test_nd_save_and_load_keep_lists_and_dicts(tmp_path):
    a, b = np.arange(6, dtype=np.float64).reshape(2, 3), np.array([1, -2, 3], np.int32)
    nd.save(tmp_path / "list.st", [a, b])
    got = nd.load(tmp_path / "list.st")
    assert isinstance(got, list) and len(got) == 2
    assert np.array_equal(got[0], a) and got[1].dtype == np.int32 and np.array_equal(got[1], b)
    nd.save(tmp_path / "dict.st", {"w": a, "flag": np.array([True, False])})
    got = nd.load(tmp_path / "dict.st")
    assert isinstance(got, dict) and set(got) == {"w", "flag"} and got["flag"].dtype == bool
    nd.save(tmp_path / "one.st", a[:, 1])  # not contiguous: saved as its values
    (one,) = nd.load(tmp_path / "one.st")
    assert np.array_equal(one, a[:, 1])
    nd.save(tmp_path / "empty.st", [])
    assert nd.load(tmp_path / "empty.st") == []
    if HAS_BF16:
        h = np.array([1.5, -2.25, 3e38], dtypes.bfloat16())
        nd.save(tmp_path / "bf.st", {"h": h})
        assert np.array_equal(bits(nd.load(tmp_path / "bf.st")["h"]), bits(h))
    with pytest.raises(GpuInitError, match="must be a NumPy or CuPy array"):
        nd.save(tmp_path / "bad.st", [a, [1, 2]])
    with pytest.raises(GpuInitError, match="keys must be strings"):
        nd.save(tmp_path / "bad.st", {1: a})
    with pytest.raises(GpuInitError, match="complex128 cannot be saved"):
        nd.save(tmp_path / "bad.st", np.ones(2, complex))
    assert not (tmp_path / "bad.st").exists()


def test_saving_a_deferred_network_writes_nothing(tmp_path):
    net = tiny_gpt()
    net.initialize(device="cpu", seed=1)
    with pytest.raises(DeferredInitializationError, match=r"d\.safetensors.*wte\.weight.*nothing was written"):
        net.save_parameters(tmp_path / "d.safetensors")
    assert os.listdir(tmp_path) == []


# --- per-rank loading ---------------------------------------------------------------------------

@pytest.mark.parametrize("world_size", [1, 2, 3, 7])
def test_rank_slices_are_gpuinit_shards_and_read_only_their_bytes(tmp_path, world_size):
    net = tiny_gpt()
    net.initialize(device="cpu", seed=9, defer=True)
    gpuinit.plan(net, tokens())
    whole = tiny_gpt()
    whole.initialize(device="cpu", seed=9)
    whole(tokens())
    whole.save_parameters(tmp_path / "w.safetensors")
    size = os.path.getsize(tmp_path / "w.safetensors")
    for rank in range(world_size):
        got = checkpoint.load_shard(tmp_path / "w.safetensors", rank, world_size, net=net)
        made = gpuinit.shard(net, rank, world_size)
        assert set(got) == set(made)
        for key in made:
            assert np.array_equal(bits(got[key]), bits(made[key])), key
    assert not any(p.initialized for p in net.collect_params().values())  # slices are separate
    io = "/proc/self/io"
    if world_size > 1 and os.path.exists(io):
        def read_chars():
            with open(io) as f:
                return int(next(line for line in f if line.startswith("rchar")).split()[1])
        start = read_chars()
        part = checkpoint.load_shard(tmp_path / "w.safetensors", 0, world_size)
        spent = read_chars() - start
        share = sum(a.nbytes for a in part.values())
        header = 8 + struct.unpack("<Q", (tmp_path / "w.safetensors").read_bytes()[:8])[0]
        assert spent <= share + header + 8192, (spent, share, size)
        assert spent < size / world_size + header + 8192


@pytest.mark.parametrize("split", sorted(checkpoint.SPLITS))
def test_every_split_reads_the_slices_gpuinit_shard_makes(tmp_path, split):
    net = tiny_gpt()
    net.initialize(device="cpu", seed=2)
    net(tokens())
    net.save_parameters(tmp_path / "s.safetensors")
    planned = tiny_gpt()
    planned.initialize(device="cpu", seed=2, defer=True)
    gpuinit.plan(planned, tokens())
    for rank in range(3):
        kwargs = {} if split == "flat" else {"split": split}
        made = gpuinit.shard(planned, rank, 3, **kwargs)
        got = checkpoint.load_shard(tmp_path / "s.safetensors", rank, 3, net=planned, split=split)
        assert all(np.array_equal(bits(got[k]), bits(made[k])) for k in made)


def test_rank_slices_check_the_network(tmp_path):
    _, path = mixed_source(tmp_path, units=(6, 3))
    other = nn.Dense(5, in_units=4)
    with pytest.raises(CheckpointError, match=r"mixed\.safetensors.*no tensor 'weight'"):
        checkpoint.load_shard(path, 0, 2, net=other)
    half = nn.Sequential()
    half.add(nn.Dense(6, dtype="float16"), nn.Dense(3, dtype="float16"))
    with pytest.raises(CheckpointError, match=r"'0\.weight'.*float16.*float32.*cast_dtype=True"):
        checkpoint.load_shard(path, 0, 2, net=half)
    part = checkpoint.load_shard(path, 1, 2, net=half, cast_dtype=True)
    assert part["0.weight"].dtype == np.float16 and part["0.weight"].size == 12
    with pytest.raises(GpuInitError, match="rank must be an integer in"):
        checkpoint.load_shard(path, 2, 2)
    with pytest.raises(GpuInitError, match="split"):
        checkpoint.load_shard(path, 0, 2, split="rows")


# --- the GPU's staging, on the CPU --------------------------------------------------------------

@pytest.mark.parametrize("nbytes,step", [(0, 8), (1, 8), (64, 8), (1000, 24), (1000, 4096)])
def test_staged_copies_move_every_byte_in_bounded_chunks(tmp_path, nbytes, step):
    data = np.random.default_rng(nbytes).integers(0, 256, nbytes + 17, dtype=np.uint8)
    path = tmp_path / "raw"
    path.write_bytes(data.tobytes())
    sizes = []

    def put(dest, chunk):
        sizes.append(len(chunk))
        dest[...] = chunk

    dest = np.zeros(nbytes, np.uint8)
    buffer = np.empty(step, np.uint8)
    with open(path, "rb", buffering=0) as fh:
        def read_exact(offset, view):
            fh.seek(offset)
            assert fh.readinto(view) == len(view)
        chunks = checkpoint.read_staged(read_exact, 17, dest, buffer, put)
    assert np.array_equal(dest, data[17:])
    assert chunks == len(sizes) == -(-nbytes // step) and all(0 < s <= step for s in sizes)

    written = bytearray()
    chunks = checkpoint.write_staged(written.extend, data, buffer, lambda out, src: out.__setitem__(..., src))
    assert bytes(written) == data.tobytes() and chunks == -(-data.nbytes // step)


def test_mapped_windows_copy_every_byte_from_unaligned_offsets(saved, monkeypatch):
    net, path = saved
    monkeypatch.setattr(checkpoint, "MAP_FROM_BYTES", 1)  # every read through mapped windows...
    monkeypatch.setattr(checkpoint, "WINDOW_BYTES", 4096)  # ...of one page: most reads span several
    back = tiny_gpt()
    back.load_parameters(path, device="cpu")
    assert all(np.array_equal(a, b) for a, b in zip(values(back).values(), values(net).values()))
    for rank in range(3):
        part = checkpoint.load_shard(path, rank, 3)
        for key, want in values(net).items():
            start, stop = gpuinit.sharding.shard_range(want.size, rank, 3)
            assert np.array_equal(bits(part[key]), want.reshape(-1)[start:stop]), key


def test_conversions_go_through_a_small_staging_buffer(tmp_path, monkeypatch):
    source, path = mixed_source(tmp_path, "float64")
    monkeypatch.setattr(checkpoint, "STAGING_BYTES", 64)  # chunks of 8 values (the least): 7 per weight
    net = mixed_target()
    net.load_parameters(path, cast_dtype=True)
    for a, b in zip(net.collect_params().values(), source.collect_params().values()):
        assert np.array_equal(a.data(), to_numpy(b.data()).astype(np.float32))


# --- bad files ----------------------------------------------------------------------------------

def refused(net, path, error, *words, **kwargs):
    """Load ``path`` into ``net``: it must raise ``error`` naming the file and ``words``, and
    change nothing."""
    before = observe(net)
    with pytest.raises(error) as info:
        net.load_parameters(path, **kwargs)
    message = str(info.value)
    assert os.path.basename(str(path)) in message, message
    for word in words:
        assert word in message, (word, message)
    assert observe(net) == before
    assert isinstance(info.value, GpuInitError)
    return message


def test_a_missing_file(tmp_path):
    message = refused(mixed_target(), tmp_path / "nowhere.safetensors", CheckpointNotFoundError, "does not exist")
    with pytest.raises(FileNotFoundError):
        nd.load(tmp_path / "nowhere.safetensors")
    assert message


@pytest.mark.parametrize("cut", ["length", "header", "data", "empty"])
def test_a_truncated_file(tmp_path, cut):
    _, path = mixed_source(tmp_path)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    keep = {"length": 5, "header": 8 + n // 2, "data": len(raw) - 10, "empty": 0}[cut]
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(raw[:keep])
    word = {"length": "too short for the 8-byte header length", "header": "truncated", "data": "truncated",
            "empty": "empty"}[cut]
    refused(mixed_target(), bad, CheckpointError, word)


@pytest.mark.parametrize("case", ["not json", "bad entry", "unknown dtype", "size mismatch", "gap",
                                  "bad shape", "metadata", "huge length", "trailing bytes", "bad offsets"])
def test_a_corrupted_header(tmp_path, case):
    f32 = {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}
    path = tmp_path / "bad.safetensors"
    if case == "not json":
        write_raw(path, b'{"0.weight": {"dtype": "F32", "sha', b"\0" * 12)
        word = "not JSON"
    elif case == "bad entry":
        write_raw(path, b'{"a": 1}', b"")
        word = "entry of tensor 'a'"
    elif case == "unknown dtype":
        write_raw(path, {"0.bias": dict(f32, dtype="F33")}, b"\0" * 12)
        word = "unknown dtype 'F33'"
    elif case == "size mismatch":
        write_raw(path, {"0.bias": dict(f32, shape=[4])}, b"\0" * 12)
        word = "span 12 bytes"
    elif case == "gap":
        write_raw(path, {"0.bias": dict(f32, data_offsets=[4, 16])}, b"\0" * 16)
        word = "without gaps or overlaps"
    elif case == "bad shape":
        write_raw(path, {"0.bias": dict(f32, shape=[-3])}, b"\0" * 12)
        word = "non-negative integers"
    elif case == "metadata":
        write_raw(path, {"__metadata__": {"seed": 3}, "0.bias": f32}, b"\0" * 12)
        word = "__metadata__"
    elif case == "huge length":
        path.write_bytes(struct.pack("<Q", 1 << 60) + b"{" + b" " * 100)
        word = "header is corrupted"
    elif case == "trailing bytes":
        write_raw(path, {"0.bias": f32}, b"\0" * 20)
        word = "20 follow it"
    else:
        write_raw(path, {"0.bias": dict(f32, data_offsets=[12, 0])}, b"\0" * 12)
        word = "data_offsets"
    refused(mixed_target(), path, CheckpointError, "not a valid safetensors file", word)
    # the reference implementation refuses each of them too
    with pytest.raises(Exception):
        with safetensors.safe_open(str(path), framework="numpy") as f:
            [f.get_slice(k) for k in f.keys()]


def test_a_header_that_starts_like_a_pickle_is_still_safetensors(tmp_path):
    # A header of 0x480 bytes: the file starts 0x80 0x04, a protocol-4 pickle's first two bytes.
    header = json.dumps({"bias": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}).encode()
    path = write_raw(tmp_path / "b.safetensors", header + b" " * (0x480 - len(header)),
                     np.array([1, 2, 3], np.float32).tobytes(), pad=False)
    assert path.read_bytes()[:2] == b"\x80\x04"
    net = nn.Dense(3)
    net.load_parameters(path, device="cpu", allow_missing=True)
    assert np.array_equal(net.bias.data(), [1, 2, 3])


def test_wrong_shapes_name_the_parameter_expected_and_got(tmp_path):
    _, path = mixed_source(tmp_path, units=(5, 3))
    refused(mixed_target(), path, ShapeError, "'0.weight'", "(6, 4)", "(5, 4)")


def test_wrong_dtypes_say_how_to_convert(tmp_path):
    _, path = mixed_source(tmp_path, "float16")
    refused(mixed_target(), path, CheckpointError, "'0.weight'", "float32", "float16", "cast_dtype=True")


def test_a_conversion_that_overflows_changes_nothing_and_gives_the_memory_back(tmp_path):
    big = {"0.weight": np.ones((6, 4)), "0.bias": np.ones(6), "1.weight": np.full((3, 6), 1e300), "1.bias": np.ones(3)}
    path = tmp_path / "big.safetensors"
    st_save_file(big, str(path))
    net = mixed_target()
    tracemalloc.start()
    try:
        refused(net, path, CheckpointError, "'1.weight'", "do not fit float32", cast_dtype=True)
        current, _ = tracemalloc.get_traced_memory()
        refused(net, path, CheckpointError, "'1.weight'", cast_dtype=True)
        again, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert again - current < 4096  # a failed load leaves no arena behind


def test_a_failed_load_unmaps_its_populated_arena(tmp_path):
    from gpuinit import memory
    if memory.rss_bytes() is None:
        pytest.skip("needs /proc for the RSS")
    big = {"0.weight": np.ones((1000, 1000)), "0.bias": np.ones(1000), "1.weight": np.ones((1000, 1000)),
           "1.bias": np.full(1000, 1e300)}  # 8 MB of float32 arena, the last tensor overflowing
    path = tmp_path / "big.safetensors"
    st_save_file(big, str(path))
    net = nn.Sequential()
    net.add(nn.Dense(1000), nn.Dense(1000))
    net.initialize(device="cpu", seed=1)
    for _ in range(2):  # the allocator's heap settles (the conversion's staging buffer)
        refused(net, path, CheckpointError, "'1.bias'", cast_dtype=True)
    gc.collect()
    before = memory.rss_bytes()
    for _ in range(3):
        refused(net, path, CheckpointError, "'1.bias'", cast_dtype=True)
    gc.collect()
    assert memory.rss_bytes() - before < 4 << 20  # each failure's 8 MB arena is gone (kept, 24 MB)


def test_missing_and_extra_parameters_follow_allow_missing_and_ignore_extra(tmp_path):
    source, path = mixed_source(tmp_path)
    partial = tmp_path / "partial.safetensors"
    arrays = st_load_file(str(path))
    del arrays["1.bias"]
    st_save_file(arrays, str(partial))
    refused(mixed_target(), partial, CheckpointError, "no tensor for 1 parameter", "'1.bias'", "allow_missing=True")
    net = mixed_target()
    net.load_parameters(partial, allow_missing=True)
    assert net[1].weight.initialized and not net[1].bias.initialized and net[1].bias.deferred
    assert np.array_equal(net[1].weight.data(), source[1].weight.data())
    net(np.ones((2, 4), np.float32))  # the first forward finishes the rest
    assert net[1].bias.initialized

    extra = tmp_path / "extra.safetensors"
    st_save_file(dict(st_load_file(str(path)), **{"2.weight": np.ones((2, 2), np.float32)}), str(extra))
    refused(mixed_target(), extra, CheckpointError, "'2.weight'", "not parameters of the network", "ignore_extra=True")
    net = mixed_target()
    net.load_parameters(extra, ignore_extra=True)
    assert np.array_equal(net[0].weight.data(), source[0].weight.data())


class _Trap:
    """Unpickling this creates a file: proof that a loader ran the pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_is_refused_without_being_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"0.weight": _Trap(str(marker))}, protocol=4))
    refused(mixed_target(), path, CheckpointError, "Python pickle", "not unpickled")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="pickle"):
        nd.load(path)
    assert not marker.exists()


def test_a_torch_save_file_is_refused_without_being_opened(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"0.weight": torch.ones(6, 4)}, path)
    refused(mixed_target(), path, CheckpointError, "ZIP archive", "torch.save")


def test_other_formats_say_what_the_file_looks_like(tmp_path):
    mxnet = tmp_path / "net-0000.params"  # MXNet's NDArray list: magic 0x112, reserved 0, count, ...
    mxnet.write_bytes(struct.pack("<QQQ", 0x112, 0, 1) + b"\0" * 64)
    refused(mixed_target(), mxnet, CheckpointError, "MXNet NDArray file")
    npy = tmp_path / "w.npy"
    np.save(npy, np.ones(3))
    refused(mixed_target(), npy, CheckpointError, "NumPy .npy")
    text = tmp_path / "config.safetensors"
    text.write_text("hello, this is text and not a checkpoint")
    refused(mixed_target(), text, CheckpointError, "not a safetensors file", "first bytes")
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    refused(mixed_target(), folder, CheckpointError, "is a folder")


CRASH = """
    import os, resource, signal, sys
    import numpy as np
    from gpuinit import nn
    path, limit, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    net = nn.Dense(300, in_units=300)
    net.initialize(device="cpu", seed=2)
    # Past the limit a write kills the process (SIGXFSZ's default action: a crash mid-write) or,
    # with the signal ignored (Python's own default), fails with EFBIG (a full disk, say).
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL if how == "killed" else signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        net.save_parameters(path)
    except Exception as exc:
        print(type(exc).__name__, exc)
        sys.exit(0)
    print("saved")
"""


@pytest.mark.parametrize("how", ["killed", "error"])
@pytest.mark.parametrize("existing", [False, True])
def test_a_crash_mid_write_never_leaves_half_a_file_under_the_real_name(tmp_path, how, existing):
    if not hasattr(os, "fork") or sys.platform == "win32":
        pytest.skip("RLIMIT_FSIZE is POSIX")
    path = tmp_path / "ckpt.safetensors"
    if existing:
        old = nn.Dense(300, in_units=300)
        old.initialize(device="cpu", seed=1)
        old.save_parameters(path)
        before = path.read_bytes()
    result = run_python(CRASH, path, 50_000, how, check=False)  # the file would be 361 kB
    if how == "killed":
        assert result.returncode == -signal.SIGXFSZ, (result.returncode, result.stdout)
        leftovers = [n for n in os.listdir(tmp_path) if n != "ckpt.safetensors"]
        assert len(leftovers) == 1 and leftovers[0].startswith(".ckpt.safetensors.") and leftovers[0].endswith(".tmp")
    else:
        assert result.returncode == 0 and "CheckpointError" in result.stdout and "ckpt.safetensors" in result.stdout, \
            result.stdout + result.stderr
        assert "nothing was written under that name" in result.stdout
        assert os.listdir(tmp_path) == (["ckpt.safetensors"] if existing else [])  # the temporary file is gone
    if existing:
        assert path.read_bytes() == before
        net = nn.Dense(300)
        net.load_parameters(path, device="cpu")
        assert np.array_equal(net.weight.data(), old.weight.data())
    else:
        assert not path.exists()


def test_a_write_to_a_missing_folder_says_so(tmp_path):
    net, _ = mixed_source(tmp_path)
    with pytest.raises(CheckpointError, match=r"cannot write '.*nowhere/x\.safetensors'.*folder exists"):
        net.save_parameters(tmp_path / "nowhere" / "x.safetensors")


class _Tied(nn.Block):
    """Two layers sharing one set of parameters through ``params=``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = nn.Dense(3, in_units=3)
        self.b = nn.Dense(3, in_units=3, params=self.a.params)

    def forward(self, x):
        return self.b(self.a(x))


class _One(nn.Block):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.b = nn.Dense(3, in_units=3)

    def forward(self, x):
        return self.b(x)


def test_shared_parameters_are_saved_under_each_place_unless_deduplicated(tmp_path):
    net = _Tied()
    net.initialize(seed=5)
    everywhere, once = tmp_path / "all.safetensors", tmp_path / "once.safetensors"
    net.save_parameters(str(everywhere))
    net.save_parameters(str(once), deduplicate=True)
    assert sorted(safetensors.numpy.load_file(str(everywhere))) == ["a.bias", "a.weight", "b.bias", "b.weight"]
    assert sorted(safetensors.numpy.load_file(str(once))) == ["a.bias", "a.weight"]
    for path in (everywhere, once):  # either file loads into the tied network, still tied
        fresh = _Tied()
        fresh.load_parameters(str(path))
        assert fresh.a.weight is fresh.b.weight
        assert np.array_equal(fresh.b.weight.data(), net.a.weight.data())
    alone = _One()  # a network holding only the second place finds its tensors under that name
    alone.load_parameters(str(everywhere), ignore_extra=True)
    assert np.array_equal(alone.b.weight.data(), net.a.weight.data())


def test_loads_onto_a_device_list_say_how_to_get_copies(tmp_path):
    path = str(tmp_path / "w.safetensors")
    saved = nn.Dense(2, in_units=2)
    saved.initialize(seed=1)
    saved.save_parameters(path)
    fresh = nn.Dense(2, in_units=2)
    with pytest.raises(GpuInitError, match=r"one device.*reset_ctx"):
        fresh.load_parameters(path, ctx=[gpuinit.cpu(0), gpuinit.cpu(1)])
    assert not fresh.weight.requested
    copies = nn.Dense(2, in_units=2)
    copies.initialize(ctx=[gpuinit.cpu(0), gpuinit.cpu(1)], seed=2)
    with pytest.raises(CheckpointError, match=r"copies on 2 devices.*reset_ctx\(cpu\(0\)\), then load"):
        copies.load_parameters(path)
    copies.collect_params().reset_ctx(gpuinit.cpu(0))  # the advice works
    copies.load_parameters(path)
    copies.collect_params().reset_ctx([gpuinit.cpu(0), gpuinit.cpu(1)])
    assert np.array_equal(copies.weight.data(gpuinit.cpu(1)), saved.weight.data())
