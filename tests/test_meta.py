"""Shape-only arrays (gpuinit.meta): every supported operation gives the shape and dtype NumPy
would, shape mismatches raise ShapeError, and anything needing values raises PlanError."""

import numpy as np
import pytest

from gpuinit import nd
from gpuinit.errors import GpuInitError, PlanError, ShapeError
from gpuinit.meta import MetaArray, is_meta


def meta(shape, dtype="float32"):
    return MetaArray(shape, dtype)


def like_numpy(fn, *shapes_and_dtypes):
    """``fn`` on MetaArrays and on real arrays of the same shapes and dtypes: the same shape and dtype."""
    metas = [meta(s, d) for s, d in shapes_and_dtypes]
    reals = [np.ones(s, d) for s, d in shapes_and_dtypes]
    got, want = fn(*metas), np.asarray(fn(*reals))
    assert is_meta(got), got
    assert (got.shape, got.dtype) == (want.shape, want.dtype)
    return got


F32, F16, F64, I64 = "float32", "float16", "float64", "int64"


@pytest.mark.parametrize("fn,operands", [
    (lambda a, b: a + b, [((2, 1, 3), F32), ((4, 1), F32)]),
    (lambda a, b: a * b, [((5,), F16), ((3, 1), F32)]),
    (lambda a, b: a / b, [((2, 3), I64), ((3,), I64)]),
    (lambda a, b: a < b, [((2, 3), F32), ((1,), F32)]),
    (lambda a: 1 - a, [((2, 3), F16)]),
    (lambda a: a ** 2, [((4,), F32)]),
    (lambda a: -a, [((2,), F16)]),
    (lambda a: abs(a), [((2,), "int8")]),
    (lambda a: np.exp(a), [((3, 3), F32)]),
    (lambda a: np.maximum(a, 0), [((2, 3), F16)]),
    (lambda a, b: np.where(a > 0, a, b), [((2, 3), F32), ((3,), F64)]),
], ids=["add", "mul-promote", "truediv-int", "compare", "rsub-scalar", "pow", "neg", "abs", "exp", "maximum", "where"])
def test_arithmetic_broadcasts_like_numpy(fn, operands):
    like_numpy(fn, *operands)


def test_numpy_arrays_and_metas_mix_either_way():
    x = meta((2, 3))
    for got in (np.ones(3, np.float32) + x, x + np.ones(3, np.float32), np.float32(2) * x):
        assert is_meta(got) and got.shape == (2, 3) and got.dtype == np.float32


def test_operands_that_do_not_broadcast_raise_shape_error():
    with pytest.raises(ShapeError, match=r"could not be broadcast together with shapes \[\(2, 3\), \(4,\)\]"):
        meta((2, 3)) + meta((4,))


@pytest.mark.parametrize("a,b", [((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                 ((2, 1, 3, 4), (5, 4, 6)), ((7, 1, 4), (4, 2))],
                         ids=["batch@matrix", "vector@matrix", "matrix@vector", "vector@vector",
                              "broadcast batches", "batch@matrix 2"])
def test_matmul_shapes_like_numpy_including_1d_operands(a, b):
    like_numpy(lambda x, y: x @ y, (a, F32), (b, F32))
    like_numpy(np.matmul, (a, F16), (b, F64))
    assert nd.matmul(meta(a), meta(b)).shape == (np.zeros(a) @ np.zeros(b)).shape


def test_matmul_with_a_numpy_operand():
    got = np.ones((3, 4), np.float32) @ meta((4, 2))
    assert is_meta(got) and got.shape == (3, 2)


@pytest.mark.parametrize("a,b,words", [((3, 4), (5, 6), r"do not align \(4 != 5\)"),
                                       ((4,), (3,), "do not align"), ((), (3,), "at least one dimension")])
def test_matmul_mismatches_raise_shape_error(a, b, words):
    with pytest.raises(ShapeError, match=words):
        meta(a) @ meta(b)


def test_matmul_batches_that_do_not_broadcast_raise_shape_error():
    with pytest.raises(ShapeError):
        meta((2, 3, 4)) @ meta((5, 4, 6))


@pytest.mark.parametrize("fn", [lambda x: x.reshape(6, -1), lambda x: x.reshape((24,)), lambda x: x.reshape([4, 3, 2]),
                                lambda x: np.reshape(x, (4, 6)), lambda x: x.T, lambda x: x.transpose(1, 0, 2),
                                lambda x: x.transpose((2, 0, 1)), lambda x: x.swapaxes(0, 2), lambda x: x.flatten(),
                                lambda x: x[0], lambda x: x[:, None, 1:3], lambda x: x[..., -1],
                                lambda x: x.astype("float16"), lambda x: np.expand_dims(x, -1),
                                lambda x: np.squeeze(x[:, :1]), lambda x: np.broadcast_to(x[:1], (5, 3, 4)),
                                lambda x: np.pad(x, 1), lambda x: np.tril(x[0]), lambda x: np.clip(x, 0, 1)])
def test_shape_manipulation_like_numpy(fn):
    like_numpy(fn, ((2, 3, 4), F32))


@pytest.mark.parametrize("shape", [(5, 5), (-1, -1), (7, -1), (25,)])
def test_reshape_errors_raise_shape_error(shape):
    with pytest.raises(ShapeError, match=r"cannot reshape an array of shape \(2, 3, 4\)"):
        meta((2, 3, 4)).reshape(shape)


@pytest.mark.parametrize("fn", [lambda x: x.sum(), lambda x: x.sum(axis=1), lambda x: x.sum(axis=(0, 2), keepdims=True),
                                lambda x: x.mean(axis=-1), lambda x: x.max(axis=0), lambda x: x.min(),
                                lambda x: x.var(axis=1), lambda x: x.std(axis=(1, 2)), lambda x: x.argmax(axis=1),
                                lambda x: np.sum(x, axis=0), lambda x: np.mean(x, axis=0, keepdims=True),
                                lambda x: np.amax(x, axis=2)])
@pytest.mark.parametrize("dtype", [F16, F32, I64])
def test_reductions_like_numpy(fn, dtype):
    like_numpy(fn, ((2, 3, 4), dtype))


@pytest.mark.parametrize("dtype", ["bool", "int8"])
def test_sums_of_bools_and_small_integers_have_numpy_dtype(dtype):
    like_numpy(lambda x: x.sum(axis=-1), ((2, 3), dtype))


@pytest.mark.parametrize("fn,operands", [
    (lambda a, b: np.concatenate([a, b], axis=1), [((2, 3), F32), ((2, 5), F32)]),
    (lambda a, b: np.stack([a, b], axis=1), [((2, 3), F32), ((2, 3), F16)]),
    (lambda a: np.split(a, 3)[0], [((6, 4), F32)]),
    (lambda a, i: np.take(a, i, axis=0), [((10, 4), F32), ((2, 5), I64)]),
    (lambda a, i: np.take(a, i, axis=-1), [((10, 4), F32), ((2, 5), I64)]),
    (lambda a, b: np.einsum("bij,bjk->bik", a, b), [((2, 3, 4), F32), ((2, 4, 5), F32)]),
    (lambda a, b: np.einsum("ij,kj", a, b), [((2, 3), F32), ((4, 3), F32)]),
], ids=["concatenate", "stack", "split", "take", "take last axis", "einsum", "einsum implicit"])
def test_array_functions_like_numpy(fn, operands):
    like_numpy(fn, *operands)


@pytest.mark.parametrize("call,words", [
    (lambda: np.concatenate([meta((2, 3)), meta((3, 5))], axis=1), "cannot concatenate"),
    (lambda: np.stack([meta((2, 3)), meta((2, 4))]), "stack needs arrays of one shape"),
    (lambda: np.einsum("ij,jk->ik", meta((2, 3)), meta((4, 5))), "size of 'j' is 3 and 4"),
    (lambda: np.where(meta((2, 3), "bool")), "data-dependent shape"),
])
def test_array_function_mismatches_raise_shape_error(call, words):
    with pytest.raises(ShapeError, match=words):
        call()


@pytest.mark.parametrize("call,words", [
    (lambda: np.sort(meta((3,))), "numpy.sort is not supported in a shape-only pass"),
    (lambda: np.cumsum(meta((3,))), "numpy.cumsum is not supported"),
    (lambda: np.asarray(meta((3,))), "has no values"),
    (lambda: bool(meta((1,))), "truth value of a shape-only array is unknown"),
    (lambda: meta((4, 3))[meta((2,), I64)], "use gpuinit.nd.take"),
    (lambda: np.add.reduce(meta((2, 3))), "numpy.add.reduce is not supported"),
    (lambda: np.add(meta((2,)), meta((2,)), out=np.empty(2)), "not supported in a shape-only pass"),
])
def test_what_needs_values_or_is_unsupported_raises_plan_error(call, words):
    with pytest.raises(PlanError, match=words) as err:
        call()
    assert isinstance(err.value, GpuInitError)


def test_a_meta_array_describes_itself():
    x = meta((3, 2), F16)
    assert (x.ndim, x.size, x.nbytes, len(x)) == (2, 6, 12, 3)
    assert repr(x) == "MetaArray(shape=(3, 2), dtype=float16)"
    assert is_meta(np.zeros(2), x) and not is_meta(np.zeros(2), 3)
    with pytest.raises(TypeError, match="0-d"):
        len(meta(()))
