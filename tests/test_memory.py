"""Memory readings (gpuinit.memory): numbers where they can be read, and why not where they cannot."""

import numpy as np

import gpuinit
from gpuinit import memory


def test_rss_follows_an_allocation_and_the_peak_stays_above_it():
    before = memory.rss_bytes()
    assert isinstance(before, int) and before > 0
    block = np.ones(64 << 20, np.uint8)  # 64 MiB, every page touched
    during = memory.rss_bytes()
    assert during - before >= 32 << 20
    assert memory.peak_rss_bytes() >= before + (32 << 20)  # (the kernel syncs its RSS counters lazily)
    del block


def test_process_seconds_counts_up():
    first = memory.process_seconds()
    assert first is not None and first > 0
    assert memory.process_seconds() >= first


def test_nvml_reading_gives_numbers_or_says_why():
    reading = memory.nvml_reading(0)
    if reading["available"]:
        assert reading["used_bytes"] + reading["free_bytes"] <= reading["total_bytes"]
    else:
        assert set(reading) == {"available", "reason"} and "NVML" in reading["reason"]


def test_pool_reading_on_the_cpu_says_there_is_none():
    assert memory.pool_reading(gpuinit.cpu()) == {"available": False, "reason": "no CuPy pool on the CPU"}


def test_pool_reading_on_a_gpu_counts_the_pool(gpu_device):
    device = gpuinit.as_device(gpu_device)
    with device.activate():
        block = device.xp.ones(1 << 20, np.uint8)
    reading = memory.pool_reading(device)
    assert reading["available"] and reading["total_bytes"] >= reading["used_bytes"] >= block.nbytes
