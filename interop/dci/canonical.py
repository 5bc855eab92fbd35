"""JSON Canonicalization Scheme (RFC 8785): the bytes a DCI signature covers.

The signature travels inside the JSON it signs, so it cannot cover the raw
request bytes: sender and receiver each serialise {"header", "message"} the
same way instead. RFC 8785 is that way, and libraries exist for it in every
language partners use (Java, JavaScript, Go, C#, Python): keys sorted by UTF-16
code units, no whitespace, strings minimally escaped, numbers as ECMAScript
prints them.
"""

import json
import math
from decimal import Decimal

# Integers beyond this are not exact in an IEEE double, which is what the
# scheme's numbers are: they are written as the nearest double prints.
_EXACT_INTEGER = 2**53


class NotCanonicalisable(ValueError):
    pass


def canonical_json(value) -> bytes:
    """`value` (what `json.loads` returns) as RFC 8785 bytes."""
    return _serialise(value).encode("utf-8")


def _serialise(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value) if abs(value) < _EXACT_INTEGER else _number(float(value))
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_serialise(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: str(key).encode("utf-16-be"))
        return (
            "{" + ",".join(f"{json.dumps(str(key), ensure_ascii=False)}:{_serialise(value[key])}" for key in keys) + "}"
        )
    raise NotCanonicalisable(f"{type(value).__name__} is not a JSON value")


def _number(value: float) -> str:
    """ECMAScript's Number.prototype.toString for a double (RFC 8785 section 3.2.2.3)."""
    if math.isnan(value) or math.isinf(value):
        raise NotCanonicalisable("NaN and Infinity are not JSON numbers")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that read back as the same double, as ECMAScript does.
    digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()[1:]
    digits = "".join(str(d) for d in digits_tuple)
    k = len(digits)
    n = exponent + k  # the value is 0.digits × 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text
