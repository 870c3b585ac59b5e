"""gpuinit.torch.materialize and fill_ on the CPU: one arena from torch's allocator with no copies
(each tensor a storage of its own over its bytes, so saving a part writes that part),
gpuinit's streams keyed by the module's own names, rules, tied weights, modules gpuinit does not
know, and bad input that leaves the module as it was."""

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gpuinit  # noqa: E402
import gpuinit.torch as gt  # noqa: E402
from gpuinit import init  # noqa: E402
from gpuinit.errors import (ArgumentError, ArgumentTypeError, DeviceError, GpuInitError,  # noqa: E402
                            InitializerError, OutOfMemoryError)


class Block(nn.Module):
    def __init__(self, d, first="attn"):
        super().__init__()
        # The registration order changes with `first`; the names do not.
        if first == "attn":
            self.attn = nn.Linear(d, 3 * d)
            self.mlp = nn.Linear(d, 4 * d)
        else:
            self.mlp = nn.Linear(d, 4 * d)
            self.attn = nn.Linear(d, 3 * d)
        self.ln = nn.LayerNorm(d)


class TinyGPT(nn.Module):
    def __init__(self, vocab=64, d=16, layers=2, first="attn"):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.h = nn.ModuleList(Block(d, first) for _ in range(layers))
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied


# Which default the tied embedding/head takes is the user's to say (torch's eager build and its
# reset_parameters disagree); these tests take the embedding's.
TIE = {r"wte\.weight$": init.Normal(1.0)}


def meta(factory, *args, **kwargs):
    with torch.device("meta"):
        return factory(*args, **kwargs)


def snapshot(module):
    return [(n, id(t), t.is_meta, t.dtype) for n, t in
            list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False))]


def digest(module):
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# --- zero copies, one arena -----------------------------------------------------------------------

def arena_range(tensors):
    """``(first byte, end)`` of the one allocation the last materialize made, checked to hold every
    tensor's bytes."""
    first = min(t.data_ptr() for t in tensors)
    end = first + sys.modules["gpuinit.torch.materialize"].last_materialization["bytes"]
    for t in tensors:
        assert first <= t.data_ptr() and t.data_ptr() + t.numel() * t.element_size() <= end
    return first, end


def test_every_tensor_has_its_own_storage_in_one_torch_arena():
    net = gt.materialize(meta(TinyGPT), device="cpu", rules=TIE, seed=0)
    tensors = list(net.parameters()) + list(net.buffers())
    arena_range(tensors)  # one allocation holds everything: the fills wrote into it, no copy
    spans = sorted((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()) for t in tensors)
    assert all(a_end <= b for (_, a_end), (b, _) in zip(spans, spans[1:]))  # no overlaps
    for t in tensors:
        # a storage of its own, exactly its bytes: what torch.save and safetensors look at
        assert t.untyped_storage().data_ptr() == t.data_ptr() and t.storage_offset() == 0
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size()
        assert t.data_ptr() % gpuinit.store.ALIGNMENT == 0
    assert net.lm_head.weight is net.wte.weight  # tied: one tensor still
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_saved_parts_hold_their_own_bytes_only_and_safetensors_saves_the_model(tmp_path):
    from safetensors.torch import load_model, save_model
    net = gt.materialize(meta(TinyGPT, d=32), device="cpu", rules=TIE, seed=0)
    part = net.h[1].mlp.state_dict()
    path = tmp_path / "part.pt"
    torch.save(part, path)
    own = sum(t.numel() * t.element_size() for t in part.values())
    assert path.stat().st_size < own + 4096  # the part, not the whole arena
    reloaded = torch.load(path)
    assert all(torch.equal(reloaded[k], v) for k, v in part.items())
    # safetensors refuses tensors that share a storage without covering it; these do not share one
    save_model(net, str(tmp_path / "net.safetensors"))
    fresh = gt.materialize(meta(TinyGPT, d=32), device="cpu", rules=TIE, seed=1)
    load_model(fresh, str(tmp_path / "net.safetensors"))
    assert digest(fresh) == digest(net)


def test_a_dropped_module_keeps_what_a_saved_tensor_still_uses():
    net = gt.materialize(meta(TinyGPT), device="cpu", rules=TIE, seed=0)
    kept = net.h[0].attn.weight
    want = kept.detach().clone()
    del net
    import gc
    gc.collect()
    junk = [torch.ones(100_000) for _ in range(20)]  # reuse freed memory, if the arena were freed
    assert torch.equal(kept.detach(), want) and len(junk) == 20


def test_the_numbers_are_gpuinits_streams_keyed_by_the_tensor_name():
    net = gt.materialize(meta(nn.Linear, 4, 6), device="cpu", seed=3,
                         rules={"weight": init.Uniform(0.1), "bias": init.Normal(0.5)})
    ours = gpuinit.nn.Dense(6, in_units=4, weight_initializer=init.Uniform(0.1),
                            bias_initializer=init.Normal(0.5))
    ours.initialize(device="cpu", seed=3)
    assert np.array_equal(net.weight.detach().numpy(), np.asarray(ours.weight.data()))
    assert np.array_equal(net.bias.detach().numpy(), np.asarray(ours.bias.data()))


# --- same bits ------------------------------------------------------------------------------------

def test_same_bits_whatever_the_build_order_and_in_another_process():
    a = gt.materialize(meta(TinyGPT, first="attn"), device="cpu", rules=TIE, seed=11)
    b = gt.materialize(meta(TinyGPT, first="mlp"), device="cpu", rules=TIE, seed=11)
    assert digest(a) == digest(b)
    assert digest(a) != digest(gt.materialize(meta(TinyGPT), device="cpu", rules=TIE, seed=12))
    code = ("import torch, sys; sys.path.insert(0, 'tests/torch'); import gpuinit.torch as gt; "
            "from test_materialize import TIE, TinyGPT, meta, digest; "
            "print(digest(gt.materialize(meta(TinyGPT, first='mlp'), device='cpu', rules=TIE, seed=11)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "GPUINIT_CPU_ENGINE": "numpy"})
    assert out.stdout.strip() == digest(a)  # another process, and the NumPy engine


def test_fill_gives_materializes_numbers_in_place():
    net = gt.materialize(meta(TinyGPT), device="cpu", rules=TIE, seed=5)
    want = digest(net)
    ptrs = [t.data_ptr() for t in net.parameters()]
    gt.fill_(net, seed=6, rules=TIE)
    assert digest(net) != want
    assert gt.fill_(net, seed=5, rules=TIE) is net
    assert digest(net) == want and [t.data_ptr() for t in net.parameters()] == ptrs
    eager = TinyGPT()
    gt.fill_(eager, seed=5, rules=TIE)
    assert digest(eager) == want


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtype_applies_to_floating_tensors_and_matches_the_fill_in_that_dtype(dtype):
    net = gt.materialize(meta(lambda: nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))), device="cpu", seed=2, dtype=dtype)
    assert net[0].weight.dtype == dtype and net[1].num_batches_tracked.dtype == torch.int64
    ref = torch.empty(8, 8, dtype=dtype)
    from gpuinit.torch.materialize import xp_view
    gpuinit.sharding.fill_pieces(gpuinit.cpu(), [(xp_view(ref), "0.weight", (8, 8), init.KaimingUniform(a=math.sqrt(5)))], 2)
    assert torch.equal(net[0].weight.detach().view(torch.uint8), ref.view(torch.uint8))


def test_seed_none_takes_gpuinits_global_seed():
    gpuinit.seed(40)
    a = digest(gt.materialize(meta(TinyGPT), device="cpu", rules=TIE))
    gpuinit.seed(40)
    assert digest(gt.materialize(meta(TinyGPT), device="cpu", rules=TIE)) == a == digest(gt.materialize(meta(TinyGPT), device="cpu", rules=TIE, seed=40))


# --- tied parameters --------------------------------------------------------------------------------

def test_tied_weights_stay_tied_and_are_filled_once_under_their_first_name():
    net = gt.materialize(meta(TinyGPT), device="cpu", seed=0, rules={r"lm_head\.weight": init.Normal(0.02)})
    assert net.lm_head.weight is net.wte.weight
    untied = meta(TinyGPT)
    untied.lm_head.weight = nn.Parameter(torch.empty(64, 16, device="meta"))
    gt.materialize(untied, device="cpu", seed=0, rules={r"lm_head\.weight": init.Normal(0.02)})
    # The tied tensor is keyed by the alphabetically first of its names, lm_head.weight.
    assert torch.equal(net.wte.weight, untied.lm_head.weight)
    assert abs(net.wte.weight.std().item() - 0.02) < 0.003


# --- rules ----------------------------------------------------------------------------------------

def test_rules_gpt2_style_with_scaled_residual_projections_first_match_wins():
    layers = 2
    rules = {r"mlp\.weight$": init.Normal(0.02 / math.sqrt(2 * layers)), r"\.weight$": init.Normal(0.02),
             r"\.bias$": "zeros"}
    net = gt.materialize(meta(TinyGPT, d=256, layers=layers), device="cpu", seed=0, rules=rules)
    for blk in net.h:
        assert abs(blk.mlp.weight.std().item() - 0.01) < 0.0005
        assert abs(blk.attn.weight.std().item() - 0.02) < 0.001
        assert not blk.attn.bias.any() and not blk.mlp.bias.any()
        assert abs(blk.ln.weight.std().item() - 0.02) < 0.005  # ln.weight matches r"\.weight$" too


def test_a_function_rule_fills_a_buffer_gpuinit_does_not_know_like_rope_frequencies():
    class Rope(nn.Module):
        def __init__(self, dim=8):
            super().__init__()
            self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, dim, 2).float() / dim), persistent=False)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 8)
            self.rope = Rope()

    eager = Model()
    net = meta(Model)
    with pytest.raises(InitializerError, match=r"buffer 'rope.inv_freq' of Rope"):
        gt.materialize(net, device="cpu", seed=0)
    assert all(t.is_meta for t in net.buffers())
    gt.materialize(net, device="cpu", seed=0,
                   rules={r"rope\.inv_freq": lambda t: t.copy_(1.0 / 10000 ** (torch.arange(0, 8, 2).float() / 8))})
    assert torch.equal(net.rope.inv_freq, eager.rope.inv_freq)


def test_unknown_reset_runs_the_modules_own_reset_parameters_on_the_arena():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.empty(5))
            self.reset_parameters()

            self.register_buffer("untouched", torch.empty(4))

        def reset_parameters(self):
            nn.init.constant_(self.gain, 3.0)

    net = meta(lambda: nn.Sequential(nn.Linear(5, 5), Scale()))
    with pytest.raises(InitializerError, match=r"parameter '1.gain' of Scale.*unknown='reset'"):
        gt.materialize(net, device="cpu", seed=0)
    # reset_parameters makes parameters, not buffers: a buffer computed in __init__ (RoPE
    # frequencies) would be left zero or garbage, so it still needs a rule
    with pytest.raises(InitializerError, match=r"buffer '1.untouched' of Scale.*buffers .* always need a rule"):
        gt.materialize(net, device="cpu", seed=0, unknown="reset")
    assert net[1].gain.is_meta
    gt.materialize(net, device="cpu", seed=0, unknown="reset", rules={r"untouched$": lambda t: t.fill_(7.0)})
    assert torch.equal(net[1].gain, torch.full((5,), 3.0))
    assert torch.equal(net[1].untouched, torch.full((4,), 7.0))
    arena_range([net[1].gain, net[0].weight])  # reset_parameters wrote into the arena


def test_a_subclass_that_overrides_reset_parameters_is_not_taken_for_its_base():
    class MyLinear(nn.Linear):
        def reset_parameters(self):
            nn.init.zeros_(self.weight)

    with pytest.raises(InitializerError, match="MyLinear"):
        gt.materialize(meta(MyLinear, 3, 3), device="cpu", seed=0)


def test_partly_materialized_modules_keep_their_real_tensors():
    net = meta(lambda: nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)))
    net[1] = nn.Linear(3, 3)
    kept = net[1].weight
    gt.materialize(net, device="cpu", seed=0)
    assert net[1].weight is kept and not net[0].weight.is_meta


# --- bad input: a GpuInitError naming the tensor and the fix, the module unchanged --------------

BAD = [
    ("rule matching nothing", dict(rules={r"nothing\.here": init.Normal(0.1)}), ArgumentError, "match no tensor"),
    ("rule with an initializer on an integer buffer", dict(rules={r"num_batches": init.Normal(0.1)}),
     ArgumentError, "num_batches_tracked"),
    ("rules not a dict", dict(rules=[("w", init.Normal(0.1))]), ArgumentTypeError, "rules must be a dict"),
    ("rule value not an initializer", dict(rules={"weight": 3}), ArgumentTypeError, "neither an initializer"),
    ("bad regular expression", dict(rules={"(": init.Normal(0.1)}), ArgumentError, "regular expression"),
    ("bad seed", dict(seed=-1), ArgumentError, "seed"),
    ("bad dtype", dict(dtype=torch.int32), ArgumentError, "dtype"),
    ("bad unknown", dict(unknown="ignore"), ArgumentError, "unknown"),
    ("overflowing fill", dict(dtype=torch.float16, rules={r"0\.weight": init.Uniform(1e6)}), InitializerError,
     r"'0.weight'.*float16"),
    ("a function that fails", dict(rules={r"0\.bias": lambda t: (t.fill_(float("nan")), 1 / 0)}),
     InitializerError, r"'0.bias'.*ZeroDivisionError"),
    ("a device torch does not have", dict(device="cuda:7"), GpuInitError, "cuda"),
    ("an unknown device", dict(device="tpu"), GpuInitError, "device"),
]


@pytest.mark.parametrize("label, kwargs, error, match", BAD, ids=[b[0] for b in BAD])
def test_bad_input_leaves_the_module_unchanged(label, kwargs, error, match):
    net = meta(lambda: nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    before = snapshot(net)
    kwargs = {"device": "cpu", "seed": 0, **kwargs}
    with pytest.raises(error, match=match):
        gt.materialize(net, **kwargs)
    assert snapshot(net) == before


def test_non_float_parameters_are_refused():
    net = meta(nn.Linear, 3, 3)
    net.register_parameter("steps", nn.Parameter(torch.zeros(2, dtype=torch.int64, device="meta"), requires_grad=False))
    before = snapshot(net)
    with pytest.raises(ArgumentError, match=r"parameter 'steps' has dtype torch.int64"):
        gt.materialize(net, device="cpu", seed=0, rules={"steps": init.Zero()})
    assert snapshot(net) == before


def test_an_already_materialized_module_is_refused_unless_asked_to_reinitialize():
    net = nn.Linear(3, 3)
    before = snapshot(net)
    with pytest.raises(ArgumentError, match="already has memory.*fill_"):
        gt.materialize(net, device="cpu", seed=0)
    assert snapshot(net) == before
    gt.materialize(net, device="cpu", seed=0, reinit=True)
    assert torch.equal(net.weight, gt.materialize(meta(nn.Linear, 3, 3), device="cpu", seed=0).weight)


def test_a_module_without_tensors_is_named_as_such():
    with pytest.raises(ArgumentError, match="ReLU has no parameters or buffers"):
        gt.materialize(nn.ReLU(), device="cpu", seed=0)


def test_a_model_that_does_not_fit_is_refused_before_allocating():
    net = meta(nn.Linear, 1 << 21, 1 << 21)  # 16 TiB of float32
    before = snapshot(net)
    with pytest.raises(OutOfMemoryError, match="Nothing was allocated.*plan"):
        gt.materialize(net, device="cpu", seed=0)
    assert snapshot(net) == before


def test_lazy_modules_are_refused_and_parameter_attributes_kept():
    net = meta(lambda: nn.Sequential(nn.Linear(3, 3), nn.LazyLinear(4)))
    before = snapshot(net)
    with pytest.raises(ArgumentError, match=r"'1.weight'.*lazy"):
        gt.materialize(net, device="cpu", seed=0)
    assert snapshot(net) == before
    net = meta(nn.Linear, 3, 3)
    net.weight.no_weight_decay = True
    gt.materialize(net, device="cpu", seed=0)
    assert net.weight.no_weight_decay is True and not net.weight.is_meta


def test_fill_refuses_meta_tensors_and_non_modules():
    with pytest.raises(ArgumentError, match="meta device.*materialize"):
        gt.fill_(meta(nn.Linear, 2, 2), seed=0)
    with pytest.raises(ArgumentTypeError, match="torch.nn.Module"):
        gt.materialize(torch.zeros(3), device="cpu")


def test_failed_seedless_call_gives_its_seed_back():
    gpuinit.seed(7)
    with pytest.raises(ArgumentError):
        gt.materialize(meta(nn.Linear, 2, 2), device="cpu", rules={"nothing": "zeros"})
    a = digest(gt.materialize(meta(nn.Linear, 2, 2), device="cpu"))
    assert a == digest(gt.materialize(meta(nn.Linear, 2, 2), device="cpu", seed=7))


# --- shard(split="dim0") for gpuinit's own networks -----------------------------------------------

@pytest.mark.parametrize("world_size", [1, 2, 3, 5, 9])
def test_gpuinit_shard_dim0_is_torch_chunk_of_the_whole(world_size):
    net = gpuinit.nn.Dense(7, in_units=3)
    net.initialize(device="cpu", seed=4, defer=True)
    whole = gpuinit.shard(net, rank=0, world_size=1)
    for name, shape in (("weight", (7, 3)), ("bias", (7,))):
        full = torch.from_numpy(np.asarray(whole[name])).reshape(shape)
        chunks = torch.chunk(full, world_size, dim=0)
        for rank in range(world_size):
            part = gpuinit.shard(net, rank=rank, world_size=world_size, split="dim0")[name]
            want = chunks[rank].reshape(-1) if rank < len(chunks) else torch.empty(0)
            assert torch.equal(torch.from_numpy(np.asarray(part)), want)
    with pytest.raises(ArgumentError, match="split"):
        gpuinit.shard(net, rank=0, world_size=2, split="rows")


# --- CUDA (owed to a GPU run) -------------------------------------------------------------------

def _cuda_usable():
    return torch.cuda.is_available() and gpuinit.backend.has_cupy_gpu()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_usable(), reason="needs torch with CUDA and CuPy with a usable GPU")
def test_tensors_on_several_devices_are_refused_and_the_module_unchanged():
    net = meta(lambda: nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)))
    net[1] = nn.Linear(3, 3)
    net[2] = nn.Linear(3, 3, device="cuda")
    before = snapshot(net)
    with pytest.raises(DeviceError, match="several devices"):
        gt.materialize(net, seed=0)
    assert snapshot(net) == before


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_usable(), reason="needs torch with CUDA and CuPy with a usable GPU")
def test_cuda_materialize_is_the_cpus_bits_in_torchs_memory_on_its_stream():
    before = torch.cuda.memory_allocated()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        net = gt.materialize(meta(TinyGPT, d=64), device="cuda", rules=TIE, seed=9, dtype=torch.bfloat16)
    stream.synchronize()
    assert torch.cuda.memory_allocated() - before >= sum(p.numel() * 2 for p in net.parameters())
    cpu = gt.materialize(meta(TinyGPT, d=64), device="cpu", rules=TIE, seed=9, dtype=torch.bfloat16)
    for (n, a), (_, b) in zip(net.state_dict().items(), cpu.state_dict().items()):
        assert torch.equal(a.cpu().view(-1).view(torch.uint8), b.view(-1).view(torch.uint8)), n
    arena_range(list(net.parameters()))  # one allocation from torch's caching allocator
    assert all(p.untyped_storage().nbytes() == p.numel() * p.element_size() for p in net.parameters())


def test_fill_writes_non_contiguous_tensors_in_their_logical_order():
    conv = nn.Conv2d(3, 8, 3)
    gt.fill_(conv, seed=8)
    want = conv.weight.detach().clone()
    conv = conv.to(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    conv.weight.data.zero_()
    gt.fill_(conv, seed=8)
    assert torch.equal(conv.weight.detach().contiguous(), want)


def test_plan_says_which_tensors_need_a_rule_without_raising():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.empty(3))

    net = meta(lambda: nn.Sequential(nn.Linear(3, 3), Odd()))
    fills = {t.name: t.fill for t in gt.plan(net, device="cpu").tensors}
    assert fills == {"0.weight": "default of Linear", "0.bias": "default of Linear", "1.scale": "needs a rule"}


def test_a_tensor_tied_across_module_types_needs_a_rule_saying_which_default():
    """HF ties lm_head.weight to the embedding's: torch's eager build keeps N(0, 1), its
    reset_parameters pass Linear's; gpuinit refuses to guess."""
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(300, 64)
            self.lm_head = nn.Linear(64, 300, bias=False)
            self.lm_head.weight = self.wte.weight

    net = meta(Tied)
    with pytest.raises(InitializerError, match=r"'lm_head.weight' is tied across modules.*Embedding.*Linear|"
                                               r"'lm_head.weight' is tied across modules.*Linear.*Embedding"):
        gt.materialize(net, device="cpu", seed=0)
    assert net.wte.weight.is_meta
    gt.materialize(net, device="cpu", seed=0, rules={r"wte\.weight$": init.Normal(1.0)})
    assert net.lm_head.weight is net.wte.weight and 0.95 < float(net.wte.weight.detach().std()) < 1.05


def test_fill_that_fails_in_a_rule_function_leaves_every_tensor_as_it_was():
    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def boom(t):
        raise ValueError("boom")

    with pytest.raises(InitializerError, match="boom"):
        gt.fill_(net, seed=0, rules={r"1\.weight$": boom})
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    gt.fill_(net, seed=0, rules={r"1\.weight$": lambda t: t.fill_(2.0)})
    assert torch.equal(net[1].weight, torch.full((4, 4), 2.0)) and not torch.equal(net[0].weight, before["0.weight"])


def test_fill_whose_module_reset_fails_puts_every_tensor_back():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(3))

        def reset_parameters(self):
            nn.init.constant_(self.gain, 5.0)
            raise RuntimeError("half done")

    net = nn.Sequential(nn.Linear(3, 3), Broken())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(RuntimeError, match="half done"):
        gt.fill_(net, seed=0, unknown="reset")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# --- what a reviewer's real-world tries turned up --------------------------------------------------

class Scaled(nn.Module):
    """A module gpuinit does not know, whose reset_parameters covers all its tensors."""

    def __init__(self, device=None):
        super().__init__()
        self.w = nn.Parameter(torch.empty(64, 64, device=device))
        self.g = nn.Parameter(torch.empty(64, device=device))
        self.lin = nn.Linear(8, 8, device=device)
        if device != "meta":
            self.reset_parameters()

    def reset_parameters(self):
        nn.init.kaiming_uniform_(self.w)
        nn.init.ones_(self.g)
        self.lin.reset_parameters()


def test_unknown_reset_fills_only_what_nothing_else_covers():
    wanted = gt.materialize(meta(Scaled), device="cpu", seed=0, rules={r"^w$": init.Normal(0.02), r"^g$": "ones"})
    for torch_seed in (0, 1):
        torch.manual_seed(torch_seed)
        net = gt.materialize(meta(Scaled), device="cpu", seed=0, rules={r"^w$": init.Normal(0.02)}, unknown="reset")
        assert torch.equal(net.w, wanted.w)  # the rule's numbers, not reset_parameters' kaiming
        assert torch.equal(net.lin.weight, wanted.lin.weight)  # gpuinit's default, whatever torch's RNG
        assert torch.equal(net.g, torch.ones(64))
    loaded = Scaled(device="cpu")  # a tensor that already holds values is kept
    with torch.no_grad():
        loaded.w.fill_(3.0)
    loaded.g = nn.Parameter(torch.empty(64, device="meta"))
    gt.materialize(loaded, seed=0, unknown="reset")
    assert bool(loaded.w.eq(3.0).all()) and torch.equal(loaded.g, torch.ones(64))


def test_a_failing_reset_puts_back_what_it_had_already_rewritten():
    class Breaks(Scaled):
        def reset_parameters(self):
            self.lin.reset_parameters()
            raise RuntimeError("boom")

    net = Breaks(device="meta")
    net.lin = nn.Linear(8, 8)
    loaded = net.lin.weight.detach().clone()
    with pytest.raises(RuntimeError, match="boom"):
        gt.materialize(net, device="cpu", seed=0, unknown="reset")
    assert torch.equal(net.lin.weight, loaded) and net.w.is_meta


class Rotary(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("inv_freq", torch.empty(8), persistent=False)


def test_a_rule_function_may_return_the_values_instead_of_writing_them():
    freqs = 1.0 / (10000 ** (torch.arange(0, 16, 2).float() / 16))
    net = gt.materialize(meta(Rotary), device="cpu", seed=0, rules={"inv_freq$": lambda t: freqs})
    assert torch.equal(net.inv_freq, freqs)
    gt.fill_(net, seed=0, rules={"inv_freq$": lambda t: torch.ones_like(t)})
    assert torch.equal(net.inv_freq, torch.ones(8))
    fresh = meta(Rotary)
    with pytest.raises(InitializerError, match=r"inv_freq.*returned list"):
        gt.materialize(fresh, device="cpu", seed=0, rules={"inv_freq$": lambda t: [1.0] * 8})
    with pytest.raises(InitializerError, match=r"inv_freq.*returned a tensor of shape \(4,\)"):
        gt.materialize(fresh, device="cpu", seed=0, rules={"inv_freq$": lambda t: torch.ones(4)})
    assert fresh.inv_freq.is_meta


def test_a_parametrized_layer_is_named_with_the_way_out_not_a_key_error():
    from torch.nn.utils.parametrizations import weight_norm
    with torch.device("meta"):
        net = nn.Sequential(weight_norm(nn.Linear(16, 8)), nn.Linear(8, 2))
    with pytest.raises(InitializerError, match=r"0\.bias.*parametrization.*materialize before registering"):
        gt.materialize(net, device="cpu", seed=0, rules={"original": init.Normal(0.02)})
    assert gt.plan(net, device="cpu").num_parameters == 16 * 8 + 8 + 8 + 8 * 2 + 2
    gt.materialize(net, device="cpu", seed=0, rules={"original": init.Normal(0.02), r"^0\.bias$": "zeros"})
    assert net(torch.ones(1, 16)).shape == (1, 2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer where torch has no CUDA")
def test_cuda_without_cuda_is_a_device_error_for_every_spelling():
    for device in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(DeviceError, match="torch sees no CUDA device"):
            gt.materialize(meta(nn.Linear, 2, 2), device=device, seed=0)
        with pytest.raises(DeviceError):
            gt.plan(meta(nn.Linear, 2, 2), device=device)


def test_a_padding_row_stays_zero_whatever_initializer_a_rule_gives():
    net = gt.materialize(meta(nn.Embedding, 10, 4, padding_idx=3), device="cpu", seed=0,
                         rules={"weight": init.Normal(0.02)})
    assert torch.equal(net.weight[3], torch.zeros(4)) and bool(net.weight[2].ne(0).all())


def test_a_rule_shadowed_by_an_earlier_one_is_named_as_such():
    with pytest.raises(ArgumentError, match=r"rule '\^bias\$' is never used.*\['bias'\].*earlier rule"):
        gt.materialize(meta(nn.Linear, 2, 2), device="cpu", seed=0, rules={"b": "zeros", "^bias$": "ones"})
