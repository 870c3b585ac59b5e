"""FSDP2 on the CPU (gloo): each rank materializes its own dim-0 shards, without communication,
and the gathered parameters equal the unsharded materialize bit for bit (uneven and empty shards
included); fill_ refills the shards in place; Shard(1), an unshared seed and a real parameter
beside meta ones are refused, and a failing rule function puts the module back on the meta
device, in each case the module left as it was; buffers that hold values keep them.
The checks run in tests/torch/fsdp_worker.py, under torchrun."""

import os
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("this torch is built without torch.distributed", allow_module_level=True)

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = pathlib.Path(__file__).resolve().parent / "fsdp_worker.py"


@pytest.mark.slow
@pytest.mark.parametrize("world_size", [2, 3])
def test_fsdp2_shards_materialized_per_rank_equal_the_unsharded_model(world_size):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "GPUINIT_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          f"--nproc_per_node={world_size}", str(WORKER)],
                         capture_output=True, text=True, env=env, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    for rank in range(world_size):
        assert f"OK rank {rank} of {world_size}" in out.stdout
