"""Run by tests/torch/test_fsdp.py under ``torchrun --nproc_per_node N`` (gloo, CPU): materialize an
FSDP2 model's shards on every rank and check them against the unsharded materialize."""

import math
import sys


def model(nn):
    # Dim-0 sizes that split unevenly among 2 and 3 ranks, and ones that leave ranks empty.
    return nn.Sequential(nn.Embedding(7, 6, padding_idx=4), nn.Linear(6, 5), nn.LayerNorm(5),
                         nn.Linear(5, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))


def main() -> int:
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard

    import gpuinit.torch as gt
    from gpuinit import init
    from gpuinit.errors import ArgumentError, InitializerError

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    rules = {r"^1\.weight$": init.Normal(0.02 / math.sqrt(2))}

    whole = gt.materialize(_meta(torch, nn), device="cpu", seed=3, rules=rules)
    sharded = _meta(torch, nn)
    for layer in sharded:
        fully_shard(layer, mesh=mesh)
    fully_shard(sharded, mesh=mesh)
    gt.materialize(sharded, device="cpu", seed=3, rules=rules)
    want = dict(whole.named_parameters())
    for name, p in sharded.named_parameters():
        local = p.to_local()
        chunk = torch.chunk(want[name].detach(), world, dim=0)
        expect = chunk[rank] if rank < len(chunk) else want[name].detach()[:0]
        assert torch.equal(local.detach(), expect), (rank, name)
        assert torch.equal(p.full_tensor().detach(), want[name].detach()), (rank, name)  # gathered: bit for bit
    for name, b in sharded.named_buffers():
        assert torch.equal(b, dict(whole.named_buffers())[name]), (rank, name)
    # fill_ re-initializes the shards in place, to the same numbers.
    ptrs = [p.to_local().data_ptr() for p in sharded.parameters()]
    gt.fill_(sharded, seed=4, rules=rules)
    gt.fill_(sharded, seed=3, rules=rules)
    assert [p.to_local().data_ptr() for p in sharded.parameters()] == ptrs
    for name, p in sharded.named_parameters():
        assert torch.equal(p.full_tensor().detach(), want[name].detach()), (rank, name)
    # A forward and backward run on the materialized shards.
    sharded(torch.tensor([1, 2, 3, 0])).sum().backward()

    # Without a seed shared by every rank, sharded modules are refused, unchanged.
    other = _meta(torch, nn)
    fully_shard(other, mesh=mesh)
    refused("seed=None for shards", lambda: gt.materialize(other, device="cpu"), ArgumentError, "same seed")
    assert all(p.is_meta for p in other.parameters())

    # Placements other than Shard(0) and Replicate are refused, the module left on the meta device.
    with torch.device("meta"):
        other = nn.Sequential(nn.Linear(6, 4))  # dim 1 even among 2 and 3 ranks, as FSDP2 needs
    fully_shard(other, mesh=mesh, shard_placement_fn=lambda p: Shard(1) if p.dim() == 2 else Shard(0))
    refused("Shard(1)", lambda: gt.materialize(other, device="cpu", seed=3), ArgumentError, "Shard(dim=1)",
            "not supported")
    assert all(p.is_meta for p in other.parameters())
    # A rule's function that fails after to_empty: the module goes back to the meta device (its
    # memory given back), and a second materialize works.
    other = _meta(torch, nn)
    fully_shard(other, mesh=mesh)

    def broken(t):
        raise RuntimeError("no")
    failing = {r"^1\.bias$": broken}
    refused("a failing rule function", lambda: gt.materialize(other, device="cpu", seed=3, rules=failing),
            InitializerError, "1.bias")
    assert all(t.is_meta for t in other.parameters()) and all(t.is_meta for t in other.buffers())
    gt.materialize(other, device="cpu", seed=3, rules=rules)
    for name, p in other.named_parameters():
        assert torch.equal(p.full_tensor().detach(), want[name].detach()), (rank, name)

    # A buffer that already holds values keeps them (to_empty alone would leave garbage there).
    other = _meta(torch, nn)
    other[4].register_buffer("running_var", torch.full((2,), 7.0))
    fully_shard(other, mesh=mesh)
    gt.materialize(other, device="cpu", seed=3)
    assert torch.equal(other[4].running_var, torch.full((2,), 7.0))
    assert not any(t.is_meta for t in other.parameters())

    # A parameter that already has memory, beside meta ones, is refused, the module unchanged.
    other = _meta(torch, nn)
    other[5].bias = nn.Parameter(torch.ones(1))
    fully_shard(other, mesh=mesh)
    refused("a real parameter beside meta ones", lambda: gt.materialize(other, device="cpu", seed=3), ArgumentError,
            "'5.bias'", "meta device")
    assert other[0].weight.is_meta and not other[5].bias.is_meta
    dist.barrier()
    print(f"OK rank {rank} of {world}", flush=True)
    dist.destroy_process_group()
    return 0


def refused(what, call, error, *says) -> None:
    """``call()`` (doing ``what``) raises ``error``, its message holding each of ``says``."""
    try:
        call()
    except error as exc:
        assert all(text in str(exc) for text in says), exc
    else:
        raise AssertionError(f"{what} was accepted")


def _meta(torch, nn):
    with torch.device("meta"):
        return model(nn)


if __name__ == "__main__":
    sys.exit(main())
