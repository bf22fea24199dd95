import math

import pytest


class UnitError(ValueError):
    pass


# factor to convert one unit into the base unit of its dimension
_UNITS = {
    "length": {"m": 1.0, "km": 1000.0, "cm": 0.01, "mm": 0.001,
               "in": 0.0254, "ft": 0.3048, "mi": 1609.344},
    "mass": {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.028349523125},
    "time": {"s": 1.0, "min": 60.0, "h": 3600.0, "day": 86400.0},
}
_TEMPERATURE = {"C", "F", "K"}


def dimension_of(unit: str) -> str:
    for dim, table in _UNITS.items():
        if unit in table:
            return dim
    if unit in _TEMPERATURE:
        return "temperature"
    raise UnitError(f"unknown unit {unit!r}")


def _to_kelvin(value: float, unit: str) -> float:
    if unit == "K":
        kelvin = value
    elif unit == "C":
        kelvin = value + 273.15
    else:
        kelvin = (value - 32) * 5 / 9 + 273.15
    if kelvin < 0:
        raise UnitError("temperature below absolute zero")
    return kelvin


def _from_kelvin(kelvin: float, unit: str) -> float:
    if unit == "K":
        return kelvin
    if unit == "C":
        return kelvin - 273.15
    return (kelvin - 273.15) * 9 / 5 + 32


def convert(value: float, src: str, dst: str) -> float:
    dim_src, dim_dst = dimension_of(src), dimension_of(dst)
    if dim_src != dim_dst:
        raise UnitError(f"cannot convert {dim_src} to {dim_dst}")
    if dim_src == "temperature":
        return _from_kelvin(_to_kelvin(value, src), dst)
    table = _UNITS[dim_src]
    return value * table[src] / table[dst]


def parse_quantity(text: str):
    """Split strings like '12.5 km' or '-3F' into (value, unit)."""
    text = text.strip()
    i = len(text)
    while i and not (text[i - 1].isdigit() or text[i - 1] == "."):
        i -= 1
    number, unit = text[:i].strip(), text[i:].strip()
    if not number or not unit:
        raise UnitError(f"cannot parse quantity {text!r}")
    return float(number), unit


@pytest.mark.parametrize("value, src, dst, expected", [
    (1, "km", "m", 1000),
    (12, "in", "ft", 1),
    (1, "mi", "km", 1.609344),
    (16, "oz", "lb", 1),
    (90, "min", "h", 1.5),
    (100, "C", "F", 212),
    (-40, "F", "C", -40),
    (0, "K", "C", -273.15),
])
def test_convert(value, src, dst, expected):
    assert convert(value, src, dst) == pytest.approx(expected)


def test_identity_conversion_is_exact():
    assert convert(3.25, "kg", "kg") == 3.25


def test_incompatible_dimensions():
    with pytest.raises(UnitError, match="length to mass"):
        convert(1, "m", "kg")


def test_unknown_unit():
    with pytest.raises(UnitError):
        convert(1, "furlong", "m")


def test_absolute_zero_guard():
    with pytest.raises(UnitError):
        convert(-500, "F", "K")


@pytest.mark.parametrize("text, expected", [
    ("12.5 km", (12.5, "km")),
    ("-3F", (-3.0, "F")),
    ("  7 day ", (7.0, "day")),
])
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["km", "12", ""])
def test_parse_quantity_rejects_garbage(text):
    with pytest.raises(UnitError):
        parse_quantity(text)


def test_round_trip_is_stable():
    for unit in _UNITS["length"]:
        back = convert(convert(42.0, "m", unit), unit, "m")
        assert math.isclose(back, 42.0, rel_tol=1e-12)
