import pytest

_VALUES = [
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"),
    (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
    (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
]
_SYMBOLS = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def to_roman(number: int) -> str:
    if not isinstance(number, int) or isinstance(number, bool):
        raise TypeError("expected an int")
    if not 0 < number < 4000:
        raise ValueError("roman numerals cover 1..3999")
    parts = []
    for value, symbol in _VALUES:
        count, number = divmod(number, value)
        parts.append(symbol * count)
    return "".join(parts)


def from_roman(text: str) -> int:
    text = text.strip().upper()
    if not text or any(ch not in _SYMBOLS for ch in text):
        raise ValueError(f"invalid roman numeral: {text!r}")
    total = 0
    for current, following in zip(text, text[1:] + " "):
        value = _SYMBOLS[current]
        if following != " " and _SYMBOLS[following] > value:
            total -= value
        else:
            total += value
    # reject non-canonical forms such as "IIII" or "VX"
    if to_roman(total) != text:
        raise ValueError(f"non-canonical roman numeral: {text!r}")
    return total


@pytest.mark.parametrize("number, expected", [
    (1, "I"), (4, "IV"), (9, "IX"), (14, "XIV"), (40, "XL"),
    (90, "XC"), (400, "CD"), (1994, "MCMXCIV"), (2024, "MMXXIV"), (3999, "MMMCMXCIX"),
])
def test_to_roman(number, expected):
    assert to_roman(number) == expected


@pytest.mark.parametrize("bad", [0, -5, 4000])
def test_to_roman_out_of_range(bad):
    with pytest.raises(ValueError):
        to_roman(bad)


@pytest.mark.parametrize("bad", [1.5, "12", True, None])
def test_to_roman_wrong_type(bad):
    with pytest.raises(TypeError):
        to_roman(bad)


def test_round_trip_all_values():
    for n in range(1, 4000):
        assert from_roman(to_roman(n)) == n


@pytest.mark.parametrize("text", ["", "ABC", "IIII", "VX", "IC", "MMMM"])
def test_from_roman_rejects_invalid(text):
    with pytest.raises(ValueError):
        from_roman(text)


def test_from_roman_is_case_insensitive_and_trims():
    assert from_roman("  mcmxciv ") == 1994
