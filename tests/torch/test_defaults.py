"""Torch's own default distributions, drawn from gpuinit's streams: every bound and moment is
compared with what torch's own reset_parameters gives the same module, on large tensors."""

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gpuinit.torch as gt  # noqa: E402

# (name, factory, {tensor name: family}); families: "uniform", "normal", "const", "padding".
CASES = [
    ("Linear", lambda: nn.Linear(1536, 1024), {"weight": "uniform", "bias": "uniform"}),
    ("Conv1d", lambda: nn.Conv1d(96, 4096, 5), {"weight": "uniform", "bias": "uniform"}),
    ("Conv2d", lambda: nn.Conv2d(64, 2048, 3, groups=2), {"weight": "uniform", "bias": "uniform"}),
    ("Conv3d", lambda: nn.Conv3d(16, 2048, 3), {"weight": "uniform", "bias": "uniform"}),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2048, 96, 3), {"weight": "uniform", "bias": "uniform"}),
    ("Bilinear", lambda: nn.Bilinear(64, 32, 1024), {"weight": "uniform", "bias": "uniform"}),
    ("Embedding", lambda: nn.Embedding(4096, 256, padding_idx=7), {"weight": "padding"}),
    ("EmbeddingBag", lambda: nn.EmbeddingBag(4096, 256), {"weight": "normal"}),
    ("LayerNorm", lambda: nn.LayerNorm(4096), {"weight": "const", "bias": "const"}),
    ("RMSNorm", lambda: nn.RMSNorm(4096), {"weight": "const"}),
    ("GroupNorm", lambda: nn.GroupNorm(8, 4096), {"weight": "const", "bias": "const"}),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(4096), {"weight": "const", "bias": "const", "running_mean": "const",
                                                   "running_var": "const", "num_batches_tracked": "const"}),
    ("InstanceNorm1d", lambda: nn.InstanceNorm1d(512, affine=True, track_running_stats=True),
     {"weight": "const", "bias": "const", "running_mean": "const", "running_var": "const",
      "num_batches_tracked": "const"}),
    ("MultiheadAttention", lambda: nn.MultiheadAttention(1024, 8, add_bias_kv=True),
     {"in_proj_weight": "uniform", "in_proj_bias": "const", "out_proj.weight": "uniform",
      "out_proj.bias": "const", "bias_k": "normal", "bias_v": "normal"}),
    ("MultiheadAttention kdim", lambda: nn.MultiheadAttention(1024, 8, kdim=512, vdim=256),
     {"q_proj_weight": "uniform", "k_proj_weight": "uniform", "v_proj_weight": "uniform",
      "in_proj_bias": "const", "out_proj.weight": "uniform", "out_proj.bias": "const"}),
    ("LSTM", lambda: nn.LSTM(512, 512, num_layers=2), None),
    ("GRU", lambda: nn.GRU(256, 1024), None),
    ("RNNCell", lambda: nn.RNNCell(256, 1024), None),
    ("PReLU", lambda: nn.PReLU(4096, init=0.1), {"weight": "const"}),
    ("Transformer", lambda: nn.Transformer(256, 4, 1, 1, 1024), None),
]


def _compare(name, family, ours, theirs):
    ours, theirs = ours.detach().double(), theirs.detach().double()
    n = theirs.numel()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
    if family == "const" or theirs.min() == theirs.max():
        assert torch.equal(ours, theirs), name
        return
    if family == "padding":
        assert torch.equal(ours[7], torch.zeros_like(ours[7])) and torch.equal(theirs[7], ours[7])
        ours, theirs = torch.cat([ours[:7], ours[8:]]), torch.cat([theirs[:7], theirs[8:]])
        family = "normal"
    std = theirs.std().item()
    # Moments: the standard errors of a mean and of a standard deviation over n draws, times 6.
    assert abs(ours.mean().item() - theirs.mean().item()) < 6 * std * math.sqrt(2 / n), name
    assert abs(ours.std().item() - std) < 6 * std * math.sqrt(1 / n) + 1e-12, name
    if family == "uniform":
        # U(-b, b): both samples reach within a few b/n of the bound; ours never beyond torch's b.
        bound = max(theirs.abs().max().item(), ours.abs().max().item())
        # The gap between a sample's extreme and the bound is about 2b/n; 20 times that, or 0.1%.
        tol = 40 * bound / n + 1e-3 * bound
        assert abs(ours.max().item() - theirs.max().item()) < tol, name
        assert abs(ours.min().item() - theirs.min().item()) < tol, name
        assert abs(ours.max().item() + ours.min().item()) < tol, name


@pytest.mark.parametrize("label, factory, families", CASES, ids=[c[0] for c in CASES])
def test_default_distribution_is_torchs(label, factory, families):
    torch.manual_seed(0)
    eager = factory()
    with torch.device("meta"):
        meta = factory()
    gt.materialize(meta, device="cpu", seed=0)
    theirs = dict(eager.named_parameters()) | dict(eager.named_buffers())
    ours = dict(meta.named_parameters()) | dict(meta.named_buffers())
    assert theirs.keys() == ours.keys()
    for name in theirs:
        family = (families or {}).get(name)
        if families is not None:
            assert family is not None, f"{label}: untested tensor {name}"
        elif theirs[name].dim() >= 1:
            family = "uniform" if label != "Transformer" or theirs[name].dim() > 1 else None
            if label == "Transformer" and family is None:  # the layers' biases: Linear's or zeros
                family = "const" if theirs[name].min() == theirs[name].max() else "uniform"
        _compare(f"{label}.{name}", family, ours[name], theirs[name])


def test_bias_of_an_empty_fan_in_is_zero_like_torchs():
    with torch.device("meta"):
        m = nn.Linear(0, 5)
    gt.materialize(m, device="cpu", seed=0)
    assert torch.equal(m.bias, torch.zeros(5)) and m.weight.shape == (5, 0)
