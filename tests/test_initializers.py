"""Initializers: Gluon's and PyTorch's formulas, dispatch by role, errors."""

import math

import numpy as np
import pytest

from gpuinit import init, nn
from gpuinit.errors import InitializerError
from gpuinit.init import InitDesc
from gpuinit.streams import Fill


def desc(shape, role="weight", name="w", own=False):
    return InitDesc(name, role=role, shape=shape, own=own)


def bound(initializer, shape):
    fill = initializer.fill_for(desc(shape))
    assert fill.family == "uniform" and fill.a == -fill.b
    return fill.b


def std(initializer, shape):
    fill = initializer.fill_for(desc(shape))
    assert fill.family == "normal" and fill.a == 0
    return fill.b


def test_fans_follow_gluon_and_torch():
    assert init.fans(desc((64, 3, 5, 7))) == (3 * 35, 64 * 35)
    assert init.fans(desc((10, 20))) == (20, 10)
    with pytest.raises(InitializerError, match="at least 2 dimensions"):
        init.fans(desc((10,)))


@pytest.mark.parametrize("factor", ["avg", "in", "out"])
def test_xavier_is_gluons_formula(factor):
    shape = (64, 32, 3, 3)
    fan_in, fan_out = 32 * 9, 64 * 9
    f = {"avg": (fan_in + fan_out) / 2, "in": fan_in, "out": fan_out}[factor]
    assert math.isclose(bound(init.Xavier("uniform", factor, 3), shape), math.sqrt(3 / f), rel_tol=1e-14)
    assert math.isclose(std(init.Xavier("gaussian", factor, 2.5), shape), math.sqrt(2.5 / f), rel_tol=1e-14)


def test_msraprelu_is_gaussian_xavier_with_prelu_magnitude():
    shape = (20, 10)
    expected = math.sqrt((2 / (1 + 0.25 ** 2)) / 15)
    assert math.isclose(std(init.MSRAPrelu(), shape), expected, rel_tol=1e-14)


def test_torch_presets_use_torch_formulas():
    shape = (30, 20, 3, 3)
    fan_in, fan_out = 20 * 9, 30 * 9
    gain = 1.7
    assert math.isclose(bound(init.XavierUniform(gain), shape),
                        gain * math.sqrt(6.0 / (fan_in + fan_out)), rel_tol=1e-14)
    assert math.isclose(std(init.XavierNormal(gain), shape),
                        gain * math.sqrt(2.0 / (fan_in + fan_out)), rel_tol=1e-14)
    # kaiming_uniform_(a=0, mode='fan_in', nonlinearity='leaky_relu'): bound = sqrt(2) * sqrt(3 / fan_in)
    assert math.isclose(bound(init.KaimingUniform(), shape), math.sqrt(2) * math.sqrt(3 / fan_in), rel_tol=1e-14)
    # nn.Linear's default: kaiming_uniform_(a=sqrt(5)) gives bound 1 / sqrt(fan_in)
    assert math.isclose(bound(init.KaimingUniform(a=math.sqrt(5)), shape), 1 / math.sqrt(fan_in), rel_tol=1e-14)
    assert math.isclose(std(init.KaimingNormal(mode="fan_out", nonlinearity="relu"), shape),
                        math.sqrt(2) / math.sqrt(fan_out), rel_tol=1e-14)
    assert math.isclose(init.calculate_gain("tanh"), 5 / 3)
    assert math.isclose(init.calculate_gain("leaky_relu"), math.sqrt(2 / (1 + 0.01 ** 2)))


def test_torch_formulas_agree_with_torch_itself():
    torch = pytest.importorskip("torch")
    w = torch.empty(300, 200)
    for ours, theirs in [(init.KaimingUniform(a=math.sqrt(5)), lambda t: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))),
                         (init.XavierUniform(), torch.nn.init.xavier_uniform_)]:
        theirs(w)
        assert float(w.abs().max()) <= bound(ours, (300, 200)) + 1e-7
        assert float(w.abs().max()) > 0.99 * bound(ours, (300, 200))


def test_variance_scaling_truncated_normal_has_the_asked_variance():
    fill = init.VarianceScaling(2.0, "fan_in", "truncated_normal").fill_for(desc((10, 50)))
    assert fill.family == "truncated_normal" and (fill.lo, fill.hi) == (-2, 2)
    assert math.isclose(fill.b * 0.87962566103423978, math.sqrt(2.0 / 50), rel_tol=1e-14)


def test_defaults_by_role():
    u = init.Uniform()
    assert u.fill_for(desc((3, 4))) == Fill.uniform(-0.07, 0.07)
    assert u.fill_for(desc((3,), "bias")) == Fill.constant(0)
    assert u.fill_for(desc((3,), "gamma")) == Fill.constant(1)
    assert u.fill_for(desc((3,), "beta")) == Fill.constant(0)
    assert u.fill_for(desc((3,), "running_var")) == Fill.constant(1)
    # A parameter of no declared kind (params.get('scale', ...)) gets the weight rule, as in Gluon;
    # one the weight rule cannot fill is refused with the rule's reason.
    assert u.fill_for(desc((3,), "default")) == Fill.uniform(-0.07, 0.07)
    with pytest.raises(InitializerError, match="at least 2 dimensions"):
        init.Xavier().fill_for(desc((3,), "default"))
    # A parameter's own initializer fills it whatever its role, as in Gluon.
    assert u.fill_for(desc((3,), "bias", own=True)) == Fill.uniform(-0.07, 0.07)


def test_dispatch_is_by_role_not_by_name():
    assert init.Uniform().fill_for(desc((3,), role="bias", name="looks_like_a_weight")) == Fill.constant(0)
    assert init.Uniform().fill_for(desc((3, 3), role="weight", name="x_bias")) == Fill.uniform(-0.07, 0.07)


def test_create_from_names():
    assert isinstance(init.create("zeros"), init.Zero)
    assert isinstance(init.create("Xavier"), init.Xavier)
    with pytest.raises(InitializerError, match="cannot make an initializer"):
        init.create("nope")


def test_bad_arguments_are_rejected_with_the_fix():
    with pytest.raises(InitializerError, match="rnd_type"):
        init.Xavier(rnd_type="gauss")
    with pytest.raises(InitializerError, match="a < b"):
        init.TruncatedNormal(a=1, b=0)
    with pytest.raises(InitializerError, match="nonlinearity"):
        init.KaimingNormal(nonlinearity="swish")


@pytest.mark.parametrize("shape", [(16, 16), (32, 8), (8, 32), (12, 3, 2, 2)])
def test_orthogonal_is_orthogonal_and_reproducible(shape):
    def make(seed):
        net = nn.Sequential()
        net.add(nn.Dense(shape[0], in_units=int(np.prod(shape[1:]))))
        net[0].weight.shape = (shape[0], int(np.prod(shape[1:])))
        net.initialize(init=init.Orthogonal(scale=2.0, rand_type="normal"), device="cpu", seed=seed)
        return net[0].weight.data().astype(np.float64)

    w = make(1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    assert np.allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-5)
    assert np.array_equal(w, make(1)) and not np.array_equal(w, make(2))


def test_mixed_picks_by_pattern_on_name_or_path():
    net = nn.Sequential()
    net.add(nn.Dense(4, in_units=3), nn.Dense(2, in_units=4))
    mixed = init.Mixed([r"1\.weight", ".*"], [init.Constant(3.0), init.Constant(1.0)])
    net.initialize(init=mixed, device="cpu")
    assert np.all(net[1].weight.data() == 3.0) and np.all(net[0].weight.data() == 1.0)
    with pytest.raises(InitializerError, match="matches none"):
        init.Mixed(["nothing"], [init.Zero()]).fill_for(desc((2, 2)))


def test_calling_an_initializer_directly_fills_the_array():
    arr = np.zeros((4, 5), np.float32)
    init.Constant(2.5)("w", arr)
    assert np.all(arr == 2.5)
    init.Uniform(0.1)("w", arr)
    assert np.abs(arr).max() <= 0.1 and arr.std() > 0


def test_every_builtin_runs_end_to_end(device):
    builtins = [init.Zero(), init.One(), init.Constant(0.5), init.Uniform(), init.Normal(),
                init.TruncatedNormal(), init.Xavier(), init.Xavier("gaussian"), init.MSRAPrelu(),
                init.Orthogonal(), init.XavierUniform(), init.XavierNormal(), init.KaimingUniform(),
                init.KaimingNormal(), init.VarianceScaling()]
    for initializer in builtins:
        net = nn.Dense(8, in_units=6)
        net.initialize(init=initializer, device=device, seed=0)
        assert net.weight.data().shape == (8, 6)


# --- bfloat16 ------------------------------------------------------------------------------------

def test_bfloat16_weights_are_the_float32_weights_rounded():
    """The contract: a bfloat16 fill is the float32 fill rounded to nearest-even (ml_dtypes' rounding)."""
    pytest.importorskip("ml_dtypes")
    from gpuinit import dtypes
    for initializer in (init.Xavier(), init.Normal(0.02), init.TruncatedNormal(sigma=0.3), init.Constant(0.1)):
        nets = {}
        for dtype in ("float32", "bfloat16"):
            nets[dtype] = nn.Dense(64, in_units=48, dtype=dtype)
            nets[dtype].initialize(init=initializer, device="cpu", seed=5)
        w16 = nets["bfloat16"].weight.data()
        assert w16.dtype == dtypes.bfloat16()
        # (the truncated normal is computed in float64: its float32 weights are that value rounded,
        # and bfloat16 rounds through float32 too)
        expected = nets["float32"].weight.data().astype(dtypes.bfloat16())
        assert np.array_equal(w16.view(np.uint16), expected.view(np.uint16)), initializer


def test_bfloat16_models_plan_half_the_bytes_and_run():
    pytest.importorskip("ml_dtypes")
    import gpuinit
    from gpuinit import models
    sizes = {d: gpuinit.plan(models.get("mlp", dtype=d), (2, 20), device="cpu").total_bytes
             for d in ("float32", "bfloat16")}
    assert sizes["bfloat16"] * 2 - sizes["float32"] < 4 * 256  # halves, up to alignment padding
    net = models.get("mlp", dtype="bfloat16")
    net.initialize(device="cpu", seed=0)
    assert np.isfinite(np.asarray(net(np.ones((2, 20), np.float32)), np.float32)).all()


def test_bfloat16_without_ml_dtypes_says_how_to_get_it():
    import subprocess
    import sys
    code = ("import sys; sys.modules['ml_dtypes'] = None\n"
            "import gpuinit\n"
            "try:\n"
            "    gpuinit.nn.Dense(3, dtype='bfloat16')\n"
            "except gpuinit.GpuInitError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert "ml_dtypes" in out.stdout and "gpuinit[bf16]" in out.stdout, out.stdout + out.stderr


def test_compute_fans_reads_the_axes_given():
    # Flax's (..., in, out): a Conv kernel (kh, kw, in, out)
    assert init.compute_fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)
    # gpuinit's and torch's (out, in, *k) with in_axis=1, out_axis=0: the fans of init.fans
    assert init.compute_fans((64, 3, 5, 7), in_axis=1, out_axis=0) == init.fans(desc((64, 3, 5, 7)))
    # Flax's Embed: out_axis=0 on (vocab, features) gives fan_in = features
    assert init.compute_fans((50257, 768), out_axis=0) == (768, 768)
    # tuples of axes multiply; batch axes count in neither fan
    assert init.compute_fans((8, 4, 16), in_axis=0, out_axis=(1, 2)) == (8, 64)
    assert init.compute_fans((5, 8, 16), batch_axis=0) == (8, 16)
    assert init.compute_fans((0, 4)) == (0, 0)


def test_compute_fans_refuses_bad_axes():
    with pytest.raises(InitializerError, match="at least 2 dimensions"):
        init.compute_fans((10,))
    with pytest.raises(InitializerError, match="out of range"):
        init.compute_fans((10, 4), in_axis=2, out_axis=0)
    with pytest.raises(InitializerError, match="integer axis"):
        init.compute_fans((10, 4), in_axis="0", out_axis=1)


def test_variance_scaling_axes_change_only_what_they_name():
    shape = (3, 3, 16, 32)
    # no axes: gpuinit's (out, in, *k) layout, as before
    assert init.VarianceScaling(1.0, "fan_in", "normal").fill_for(desc(shape)).b == \
        math.sqrt(1.0 / (3 * 16 * 32))
    assert repr(init.VarianceScaling()) == "VarianceScaling(scale=1.0, mode='fan_in', distribution='truncated_normal')"
    flax = init.VarianceScaling(2.0, "fan_in", "normal", in_axis=-2, out_axis=-1)
    assert flax.fill_for(desc(shape)).b == math.sqrt(2.0 / (3 * 3 * 16))
    assert flax != init.VarianceScaling(2.0, "fan_in", "normal")
    assert "in_axis=-2" in repr(flax)
    with pytest.raises(InitializerError, match="both in_axis and out_axis"):
        init.VarianceScaling(in_axis=-2)
    with pytest.raises(InitializerError, match="out of range"):
        init.VarianceScaling(in_axis=-2, out_axis=3).fill_for(desc((4, 4)))
