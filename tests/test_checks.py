"""Argument checks (gpuinit.checks): what each accepts and normalizes, what it refuses and with
which class, and that every message names where, what, the value given and a fix."""

import re

import numpy as np
import pytest

from gpuinit import checks
from gpuinit.errors import ArgumentError, ArgumentTypeError, InitializerError, ShapeError

WHERE = "Conv2D 'conv0'"


@pytest.mark.parametrize("value,expected", [(3, 3), (np.int64(3), 3), (np.uint8(3), 3), (2.0, 2),
                                            (np.float32(4.0), 4), (-5, -5), (2**70, 2**70)])
def test_integer_accepts_integers_and_integral_floats(value, expected):
    got = checks.integer(value, "units", WHERE)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 2.5, float("nan"), float("inf"), "3", None,
                                   np.array(3), [3], 1j])
def test_integer_refuses_bools_strings_and_fractions_as_a_type_error(value):
    with pytest.raises(ArgumentTypeError) as err:
        checks.integer(value, "units", WHERE, hint="pass units=3")
    message = str(err.value)
    assert message.startswith(f"{WHERE}: units must be an integer, got {value!r} ({type(value).__name__})")
    assert message.endswith("; pass units=3") and isinstance(err.value, TypeError)


def test_integer_bounds_and_the_error_class_given():
    assert checks.positive_int(1, "units", WHERE) == 1 and checks.non_negative_int(0, "pad", WHERE) == 0
    with pytest.raises(ArgumentError, match=f"^{re.escape(WHERE)}: units must be a positive integer, got 0$"):
        checks.positive_int(0, "units", WHERE)
    with pytest.raises(ArgumentError, match="pad must be a non-negative integer, got -1"):
        checks.non_negative_int(-1.0, "pad", WHERE)
    with pytest.raises(ArgumentError, match="must be an integer of at least 2, got 1"):
        checks.integer(1, "k", WHERE, minimum=2)
    with pytest.raises(ShapeError):  # the class the caller asked for, for values
        checks.positive_int(0, "units", WHERE, error=ShapeError)
    with pytest.raises(ArgumentTypeError):  # but a wrong type stays a type error
        checks.positive_int("1", "units", WHERE, error=ShapeError)


@pytest.mark.parametrize("value,expected", [(3, (3, 3)), (2.0, (2, 2)), ((1, 2), (1, 2)), ([1, np.int32(2)], (1, 2)),
                                            ((1.0, 3), (1, 3)), (np.array([4, 5]), (4, 5))])
def test_int_tuple_accepts_one_integer_or_a_pair(value, expected):
    got = checks.int_tuple(value, 2, "strides", WHERE)
    assert got == expected and all(type(v) is int for v in got)


@pytest.mark.parametrize("value,error,detail", [
    ((1,), ArgumentError, "(1 values)"), ((1, 2, 3), ArgumentError, "(3 values)"), ((1, 0), ArgumentError, "(1, 0)"),
    ("3", ArgumentTypeError, "'3'"), (True, ArgumentTypeError, "True"),
    ((True, 1), ArgumentTypeError, "(True, 1)"), ((1.5, 1), ArgumentTypeError, "(1.5, 1)"),
    (None, ArgumentTypeError, "None"),
])
def test_int_tuple_refuses_with_the_whole_value_and_a_fix(value, error, detail):
    with pytest.raises(error) as err:
        checks.int_tuple(value, 2, "strides", WHERE)
    message = str(err.value)
    assert message.startswith(f"{WHERE}: strides must be a positive integer or a pair of them, got ")
    assert detail in message and message.endswith("pass strides=1 or strides=(1, 1)")


def test_int_tuple_minimum_and_length():
    assert checks.int_tuple((0, 2), 2, "padding", WHERE, minimum=0) == (0, 2)
    assert checks.int_tuple(2, 3, "kernel", WHERE) == (2, 2, 2)
    with pytest.raises(ArgumentError, match=r"strides must be a positive integer.*got 0; pass strides=1 or strides=\(1, 1\)"):
        checks.int_tuple(0, 2, "strides", WHERE)
    with pytest.raises(ArgumentError, match=r"a positive integer or a tuple of 3 of them, got \(1, 2\)"):
        checks.int_tuple((1, 2), 3, "kernel", WHERE)


@pytest.mark.parametrize("value", [1, np.int8(1), 0.5, np.float16(0.5), np.float64(0.25)])
def test_real_accepts_real_numbers_as_float(value):
    got = checks.real(value, "rate", WHERE)
    assert got == float(value) and type(got) is float


@pytest.mark.parametrize("value", [True, np.bool_(False), 1j, "1", None, np.array(0.5)])
def test_real_refuses_other_types(value):
    with pytest.raises(ArgumentTypeError, match=f"rate must be a real number, got {re.escape(repr(value))}"):
        checks.real(value, "rate", WHERE)


@pytest.mark.parametrize("value,bounds,ok", [
    (float("nan"), {}, False), (float("inf"), {}, False), (-float("inf"), {"maximum": 0}, False),
    (0, {"minimum": 0}, True), (0, {"above": 0}, False), (1e-300, {"above": 0}, True),
    (1, {"maximum": 1}, True), (1, {"below": 1}, False), (0.999, {"below": 1}, True),
    (0.5, {"minimum": 0, "below": 1}, True), (-0.1, {"minimum": 0, "below": 1}, False),
])
def test_real_bounds_are_inclusive_or_strict_as_named(value, bounds, ok):
    if ok:
        assert checks.real(value, "rate", WHERE, **bounds) == value
    else:
        with pytest.raises(InitializerError, match="rate must be a finite number"):
            checks.real(value, "rate", WHERE, error=InitializerError, **bounds)


def test_real_names_its_bounds():
    with pytest.raises(ArgumentError, match="rate must be a finite number >= 0 and < 1, got 2"):
        checks.real(2, "rate", WHERE, minimum=0, below=1)


def test_choice_wants_the_same_type_and_value():
    options = ("relu", 1, None)
    assert checks.choice("relu", options, "activation", WHERE) == "relu"
    assert checks.choice(1, options, "activation", WHERE) == 1
    assert checks.choice(None, options, "activation", WHERE) is None
    for value in (True, 1.0, np.int64(1), np.str_("relu"), "Relu"):
        with pytest.raises(ArgumentError, match=re.escape(f"activation must be one of {options!r}, got {value!r}")):
            checks.choice(value, options, "activation", WHERE)


def test_flag_wants_a_bool():
    assert checks.flag(True, "use_bias", WHERE) is True and checks.flag(np.bool_(False), "use_bias", WHERE) is False
    for value in (1, 0, "yes", None):
        with pytest.raises(ArgumentTypeError, match="use_bias must be True or False"):
            checks.flag(value, "use_bias", WHERE)


def test_text():
    assert checks.text("dense0_", "prefix", WHERE) == "dense0_"
    assert checks.text("", "prefix", WHERE, empty=True) == ""
    with pytest.raises(ArgumentError, match="prefix must not be empty"):
        checks.text("", "prefix", WHERE)
    with pytest.raises(ArgumentTypeError, match="prefix must be a string, got b'x'"):
        checks.text(b"x", "prefix", WHERE)


def test_pattern_compiles_or_says_how_to_escape():
    assert checks.pattern(r"dense\d+_weight", "pattern", WHERE).fullmatch("dense12_weight")
    assert checks.pattern("", "pattern", WHERE).pattern == ""
    with pytest.raises(InitializerError, match=r"pattern '\(' is not a valid regular expression.*re.escape"):
        checks.pattern("(", "pattern", WHERE, error=InitializerError)
    with pytest.raises(ArgumentTypeError, match="pattern must be a string"):
        checks.pattern(3, "pattern", WHERE)


@pytest.mark.parametrize("value,expected", [(None, ()), ((), ()), (3, (3,)), (np.int64(3), (3,)),
                                            ((2, 0), (2, 0)), ([np.int32(2), 5], (2, 5)),
                                            (np.array([2, 3]), (2, 3))])
def test_shape_accepts_integers_and_sequences_of_them(value, expected):
    got = checks.shape(value, "shape", WHERE)
    assert got == expected and all(type(d) is int for d in got)


@pytest.mark.parametrize("value,error", [(2.0, ArgumentTypeError), ((2.0, 3), ArgumentTypeError),
                                         ((True, 3), ArgumentTypeError), (True, ArgumentTypeError),
                                         ("12", ArgumentTypeError), ((-1, 2), ShapeError)])
def test_shape_refuses_floats_bools_strings_and_negatives(value, error):
    with pytest.raises(error, match="shape must be a tuple of non-negative integers"):
        checks.shape(value, "shape", WHERE, error=ShapeError)


def test_a_positive_shape_refuses_unknown_dimensions():
    with pytest.raises(ArgumentError, match=r"tuple of positive integers, got \(2, 0\)"):
        checks.shape((2, 0), "shape", WHERE, positive=True)


def test_env_int():
    assert checks.env_int("GPUINIT_NUM_THREADS", " 4 ") == 4
    assert checks.env_int("N", "0", minimum=0) == 0
    for raw in ("0", "x", "2.5", ""):
        with pytest.raises(ArgumentError, match=f"environment variable N={re.escape(repr(raw))} must be an integer"):
            checks.env_int("N", raw)
