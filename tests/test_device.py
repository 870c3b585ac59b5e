"""Devices, the CuPy gateway, and the fallback to NumPy where no GPU is usable."""

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import gpuinit
from gpuinit import backend
from gpuinit.errors import DeviceError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_device_strings():
    assert gpuinit.as_device("cpu") == gpuinit.cpu()
    assert str(gpuinit.cpu()) == "cpu" and gpuinit.cpu().xp is np
    with pytest.raises(DeviceError, match="cannot understand device"):
        gpuinit.as_device("tpu")


def test_environment_variable_overrides_the_default(monkeypatch):
    monkeypatch.setenv("GPUINIT_DEVICE", "cpu")
    assert gpuinit.default_device() == gpuinit.cpu()


@pytest.mark.skipif(backend.has_cupy_gpu(), reason="a GPU is usable here")
def test_asking_for_a_gpu_without_one_says_why_and_how_to_fix_it():
    device = gpuinit.gpu()  # as MXNet's mx.gpu(): naming a device checks nothing; using it does
    assert repr(device) == "gpu(0)" and repr(gpuinit.gpu(1)) == "gpu(1)"
    with pytest.raises(DeviceError) as err:
        gpuinit.nd.zeros((1,), ctx=device)
    message = str(err.value)
    assert "gpu(0) is not usable" in message and "to fix" in message
    with pytest.raises(DeviceError):
        gpuinit.as_device("cuda:0")
    assert gpuinit.default_device() == gpuinit.cpu()


def test_only_the_backend_imports_cupy():
    pattern = re.compile(r"^\s*(import cupy|from cupy)\b", re.MULTILINE)
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "gpuinit").rglob("*.py")
                 if path.name != "backend.py" and pattern.search(path.read_text())]
    assert offenders == []


def test_importing_gpuinit_does_not_import_cupy():
    code = "import sys, gpuinit; gpuinit.nn.Dense(3); print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_fallback_without_a_usable_gpu_is_one_log_line():
    """With CuPy installed but no driver (CI), everything runs on NumPy after one warning."""
    pytest.importorskip("cupy")
    if backend.has_cupy_gpu():
        pytest.skip("a GPU is usable here")
    code = ("import logging; logging.basicConfig(); import gpuinit; from gpuinit import nn, nd\n"
            "net = nn.Sequential(); net.add(nn.Dense(4)); net.initialize()\n"
            "y = net(nd.random.uniform(shape=(2, 3)))\n"
            "import numpy; print(isinstance(y, numpy.ndarray), type(y).__module__.split('.')[0], "
            "gpuinit.default_device())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["True", "gpuinit", "cpu"]  # an NDArray: a NumPy array, not CuPy's
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "falling back to NumPy" in lines[0]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = 'python -m pip install -q -e ".[test]" && python -m pytest -q'
    assert command in readme and command in ci.splitlines()
