"""Argument checks shared by the entry points, with Keras-style error messages."""

import math

import numpy as np


def _invalid(name, value, expected):
    return ValueError(
        f"Invalid value for argument `{name}`. Received: {name}={value!r}. Expected {expected}.")


def check_int(name, value, minimum=None, maximum=None):
    """Returns `value` as an int, or raises ValueError naming it and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _invalid(name, value, _int_range(minimum, maximum))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _invalid(name, value, _int_range(minimum, maximum))
    return int(value)


def check_multiple(name, value, of_name, of, allow_zero=False):
    """Returns `value` as an int if it is a positive multiple of `of` (or 0, if allowed).

    For counts of steps that must fall on an epoch end, e.g. `steps` and `grid_every`,
    multiples of `steps_per_epoch`.
    """
    expected = f"{'0 or ' if allow_zero else ''}a positive multiple of {of_name}={of}"
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0
            or (value == 0 and not allow_zero) or value % of):
        raise _invalid(name, value, expected)
    return int(value)


def _finite_number(value):
    """Whether `value` is a finite int or float (numpy's too; a bool is not a number)."""
    return (not isinstance(value, bool)
            and isinstance(value, (int, float, np.floating, np.integer))
            and math.isfinite(value))


def check_positive_float(name, value):
    """Returns `value` as a float, or raises unless it is a finite number > 0."""
    if not (_finite_number(value) and value > 0):
        raise _invalid(name, value, "a finite number > 0")
    return float(value)


def check_fraction(name, value):
    """Returns `value` as a float, or raises unless it is a number in (0, 1]."""
    if not (_finite_number(value) and 0 < value <= 1):
        raise _invalid(name, value, "a number in (0, 1], e.g. 0.25 for the last quarter")
    return float(value)


def check_momentum(name, value):
    """Returns `value` as a float, or raises unless it is 0 (off) or in (0, 1)."""
    if not (_finite_number(value) and 0 <= value < 1):
        raise _invalid(name, value, "0 (off) or a number in (0, 1), e.g. 0.999")
    return float(value)


def check_seed(name, value):
    """Returns `value` if it is None or a non-negative int."""
    if value is None:
        return None
    return check_int(name, value, minimum=0)


def check_warmup(n_critic_warmup, n_critic):
    """Returns `n_critic_warmup` if it is 0 (off) or an int above `n_critic`."""
    value = check_int("n_critic_warmup", n_critic_warmup, minimum=0)
    if 0 < value <= n_critic:
        raise _invalid("n_critic_warmup", n_critic_warmup,
                       f"0 (no warm-up) or more than n_critic={n_critic}")
    return value


def _int_range(minimum, maximum):
    if minimum is not None and maximum is not None:
        return f"an integer in {minimum}..{maximum}"
    if minimum is not None:
        return f"an integer >= {minimum}"
    return "an integer"
