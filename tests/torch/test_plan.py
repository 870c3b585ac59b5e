"""gpuinit.torch.plan (nothing allocated), the report's --torch, and the bridge's import error."""

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gpuinit.torch as gt  # noqa: E402
from gpuinit import report  # noqa: E402
from gpuinit.errors import ArgumentError  # noqa: E402


def model():
    return nn.Sequential(nn.Embedding(1000, 64), nn.Linear(64, 256), nn.BatchNorm1d(256), nn.Linear(256, 7))


def meta_model():
    with torch.device("meta"):
        return model()


def test_plan_counts_bytes_per_dtype_rank_and_training_without_allocating():
    net = meta_model()
    p = gt.plan(net, device="cpu", world_size=3)
    assert all(t.is_meta for t in net.parameters())
    params = sum(t.numel() for t in model().parameters())
    assert p.num_parameters == params and p.parameter_bytes == 4 * params
    assert p.buffer_bytes == 2 * 256 * 4 + 8
    assert p.bytes_by_dtype == {"float32": 4 * params + 2 * 256 * 4, "int64": 8}
    assert p.largest_layer == ("0", "Embedding", 1000 * 64 * 4)
    # Dim-0 shards as torch.chunk: Linear(256, 7)'s 7 rows are 3, 3, 1.
    want = [0, 0, 0]
    for t in list(model().parameters()):
        for r, c in enumerate(torch.chunk(torch.empty(t.shape), 3, dim=0)):
            want[r] += c.numel() * 4
    buffers = 2 * 256 * 4 + 8
    assert p.rank_bytes == [w + buffers for w in want]
    assert p.training_bytes == [4 * w + buffers for w in want]
    assert gt.materialize(net, device="cpu", seed=0) is net
    from gpuinit.torch.materialize import last_materialization
    assert last_materialization["bytes"] == p.total_bytes


def test_plan_mixed_precision_and_dtype_and_a_model_that_does_not_fit():
    p = gt.plan(meta_model(), device="cpu", dtype=torch.bfloat16, mixed_precision=True)
    params = sum(t.numel() for t in model().parameters())
    assert p.parameter_bytes == 2 * params and p.training_bytes[0] == 18 * params + 2 * 256 * 2 + 8
    with torch.device("meta"):
        huge = nn.Linear(1 << 21, 1 << 21)
    p = gt.plan(huge, device="cpu")
    assert not p.fits and p.missing_bytes > 0 and "fits: no" in p.summary()
    assert gt.plan(huge, device="cpu", world_size=1 << 20).fits
    with pytest.raises(ArgumentError, match="world_size"):
        gt.plan(huge, device="cpu", world_size=0)


def test_report_takes_a_torch_factory(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    assert report.main(["--torch", "test_plan:model", "--device", "cpu", "--world-size", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in out["stages"]] == list(report.STAGES)
    assert out["materialization"]["planned_bytes_equal_allocated"]
    assert out["torch"]["world_size"] == 2 and out["plan"]["num_parameters"] == sum(t.numel() for t in model().parameters())
    assert report.main(["--torch", "test_plan:model", "--device", "cpu", "--plan-only"]) == 0
    assert "per rank (1, dim-0 shards)" in capsys.readouterr().out
    assert report.main(["--torch", "test_plan:nothing", "--device", "cpu"]) == report.EXIT_USAGE
    assert "has no function 'nothing'" in capsys.readouterr().err


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(100, 8)
        self.lm_head = nn.Linear(8, 100, bias=False)
        self.lm_head.weight = self.wte.weight


def test_plan_says_what_materialize_will_do_for_tied_and_partly_real_models():
    with torch.device("meta"):
        lm = TiedLM()
    p = gt.plan(lm, device="cpu")
    assert [t.fill for t in p.tensors] == ["needs a rule (tied across module types whose defaults differ)"]
    assert p.largest_layer[:2] == ("lm_head", "Linear")  # the name's own module, not another owner's
    part = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 100, device="meta"))
    p = gt.plan(part, device="cpu")
    gt.materialize(part, seed=0)
    from gpuinit.torch.materialize import last_materialization
    assert p.total_bytes == last_materialization["bytes"]  # the meta tensors' arena only


class Gain(nn.Module):  # a module gpuinit does not know: its tensor needs a rule
    def __init__(self):
        super().__init__()
        self.g = nn.Parameter(torch.empty(8))


def half_model_with_rules():
    return nn.Sequential(nn.Linear(8, 8), Gain()).to(torch.bfloat16), {r"^1\.g$": "ones"}


def test_report_keeps_the_built_dtype_and_takes_rules_from_the_factory(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    assert report.main(["--torch", "test_plan:half_model_with_rules", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dtype"] == "bfloat16" and list(out["torch"]["bytes_by_dtype"]) == ["bfloat16"]
    assert report.main(["--torch", "test_plan:half_model_with_rules", "--device", "cpu", "--dtype", "float32",
                        "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["torch"]["bytes_by_dtype"]) == ["float32"]
    with pytest.raises(SystemExit):  # options of gpuinit's own models are refused, not ignored
        report.main(["--torch", "test_plan:model", "--input-shape", "1,8"])
    assert "--input-shape" in capsys.readouterr().err


def test_without_torch_the_bridge_says_how_to_install_it():
    code = "import sys; sys.modules['torch'] = None; import gpuinit.torch"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and 'pip install "gpuinit[torch]"' in out.stderr
    ok = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None; import gpuinit; "
                         "print(gpuinit.__version__)"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr  # the core never needs torch
