"""Parameter dtypes (gpuinit.dtypes): names and types accepted, float types only for parameters,
and bfloat16 (through ml_dtypes) rounded from float32 whatever the values' precision."""

import numpy as np
import pytest

from gpuinit import dtypes
from gpuinit.errors import ArgumentError, ArgumentTypeError


@pytest.mark.parametrize("value,expected", [("float32", np.float32), (np.float16, np.float16),
                                            (np.dtype("float64"), np.float64), ("int64", np.int64)])
def test_as_dtype_takes_names_types_and_dtypes(value, expected):
    assert dtypes.as_dtype(value) == np.dtype(expected)


@pytest.mark.parametrize("value,error", [(None, ArgumentTypeError), (True, ArgumentTypeError), (3, ArgumentTypeError),
                                         (2.5, ArgumentTypeError), ("nope", ArgumentError), ([1], ArgumentError)])
def test_as_dtype_refuses_what_is_not_a_dtype(value, error):
    with pytest.raises(error, match="is not a dtype.*pass a name such as 'float32'"):
        dtypes.as_dtype(value)


def test_float_dtype_refuses_all_but_the_float_types_naming_where():
    for name in ("float16", "float32", "float64"):
        assert dtypes.float_dtype(name, "Dense 'd'") == np.dtype(name)
    for value in ("int32", np.complex64, "bool"):
        with pytest.raises(ArgumentError, match=r"^Dense 'd': dtype must be a float type gpuinit can fill "
                                                r"\(float16, float32, float64.*pass dtype='float32'"):
            dtypes.float_dtype(value, "Dense 'd'")
    with pytest.raises(ArgumentError, match="^Dense 'd': 'nope' is not a dtype"):
        dtypes.float_dtype("nope", "Dense 'd'")


def test_which_dtypes_are_float_and_real():
    assert dtypes.float_dtypes()[:3] == (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
    assert all(dtypes.is_float(d) for d in dtypes.float_dtypes())
    assert not any(dtypes.is_float(d) for d in (np.int32, np.uint8, np.bool_, np.complex64, np.longdouble))
    assert all(dtypes.is_real(d) for d in (np.bool_, np.int8, np.uint64, np.float16, np.float64))
    assert not any(dtypes.is_real(d) for d in (np.complex128, np.dtype("U3"), object))


def test_bfloat16_where_ml_dtypes_is_installed():
    bf16 = dtypes.bfloat16()
    if bf16 is None:
        assert len(dtypes.float_dtypes()) == 3
        with pytest.raises(ArgumentError, match="ml_dtypes"):
            dtypes.as_dtype("bfloat16")
        return
    assert dtypes.as_dtype("bfloat16") == dtypes.as_dtype("BF16") == bf16
    assert dtypes.float_dtypes()[3] == bf16 and dtypes.is_float(bf16) and dtypes.is_bfloat16(bf16)
    assert dtypes.float_dtype("bfloat16", "here") == bf16 and dtypes.is_real(bf16)
    assert not dtypes.is_bfloat16(np.float16)


def test_assign_rounds_to_bfloat16_through_float32():
    bf16 = dtypes.bfloat16()
    if bf16 is None:
        pytest.skip("ml_dtypes is not installed")
    # 1 + 2**-8 + 2**-30: just above a bfloat16 tie in float64, exactly on it once rounded to float32
    values = np.array([1 + 2**-8 + 2**-30, -3.3, 1e-40, 3e38, 1e39], np.float64)
    out = np.empty(values.size, bf16)
    with np.errstate(over="ignore"):
        dtypes.assign(out, values)
        expected = values.astype(np.float32).astype(bf16)
    assert np.array_equal(out.view(np.uint16), expected.view(np.uint16))
    assert float(out[0]) == 1.0
    scalar = np.empty(3, bf16)
    dtypes.assign(scalar, 0.1)  # a constant fill's Python float
    assert np.array_equal(scalar.view(np.uint16), np.full(3, np.float32(0.1)).astype(bf16).view(np.uint16))


def test_assign_to_other_dtypes_is_plain_assignment():
    out = np.empty(3, np.float16)
    with np.errstate(over="ignore"):
        dtypes.assign(out, np.array([0.1, 1e5, -2.0]))
        expected = np.array([0.1, 1e5, -2.0]).astype(np.float16)
    assert np.array_equal(out, expected) and np.isinf(out[1])
