"""The JAX bridge's tests run on 8 host devices: XLA reads that from ``XLA_FLAGS`` once, when
JAX starts, so this sets it before anything in this folder imports JAX.

No test outside this folder may import JAX first (pytest collects ``tests/jax`` before the
``tests/test_*.py`` modules); :func:`cpu_devices` fails loudly, with the reason, if one did.
"""

import os
import sys

import pytest

DEVICES = 8
FLAG = f"--xla_force_host_platform_device_count={DEVICES}"
JAX_WAS_IMPORTED = "jax" in sys.modules
if not JAX_WAS_IMPORTED and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FLAG}".strip()


@pytest.fixture(scope="session")
def cpu_devices():
    """JAX's 8 host devices."""
    jax = pytest.importorskip("jax")
    devices = jax.devices("cpu")
    if len(devices) < DEVICES:
        pytest.fail(f"JAX has {len(devices)} CPU device(s), not {DEVICES}: it was imported before "
                    f"tests/jax/conftest.py could set XLA_FLAGS={FLAG} (imported already: {JAX_WAS_IMPORTED}). "
                    "Find the test that imports jax outside tests/jax, or run tests/jax on its own")
    return devices[:DEVICES]
