"""On a CUDA GPU that both JAX and CuPy see: gpuinit's kernels fill an arena on the GPU and JAX
takes it through DLPack, without a copy, with the CPU's numbers bit for bit. Skipped, with the
reason, where there is no such GPU (owed to the GPU run: it needs jax[cuda12] and CuPy)."""

import gc

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import gpuinit.jax as gj  # noqa: E402
from gpuinit import backend, store  # noqa: E402

pytestmark = pytest.mark.gpu


@pytest.fixture
def jax_gpu():
    try:
        devices = jax.devices("gpu")
    except RuntimeError as exc:
        pytest.skip(f"JAX sees no GPU ({exc}); install jax[cuda12] or jax[cuda13]")
    if not backend.has_cupy_gpu():
        pytest.skip(f"no usable GPU for CuPy: {backend.why_no_gpu()}")
    return devices[0]


def abstract_tree():
    s = jax.ShapeDtypeStruct
    return {"params": {"Dense_0": {"kernel": s((1000, 300), jnp.float32), "bias": s((300,), jnp.float32)},
                       "Embed_0": {"embedding": s((517, 64), jnp.bfloat16)}}}


def test_gpu_leaves_are_gpuinit_arenas_handed_over_by_dlpack(jax_gpu):
    with jax.default_device(jax.devices("cpu")[0]):
        on_cpu = gj.init(abstract_tree(), seed=3)
    plan = gj.plan(abstract_tree())
    assert plan.handoff[str(jax_gpu)] == "dlpack"
    gc.collect()
    before = store.live_bytes()
    with jax.default_device(jax_gpu):
        on_gpu = gj.init(abstract_tree(), seed=3)
    leaves = jax.tree.leaves(on_gpu)
    assert all(leaf.devices() == {jax_gpu} for leaf in leaves)
    ptrs = [leaf.unsafe_buffer_pointer() for leaf in leaves]
    offsets, size = store.layout([leaf.nbytes for leaf in leaves])
    assert [p - ptrs[0] for p in ptrs] == offsets.tolist()  # one arena, no copies
    assert store.live_bytes() - before == size
    for a, b in zip(jax.tree.leaves(on_cpu), leaves):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))
