import re

import pytest


TOKEN_SPEC = [
    ("NUMBER", r"\d+(?:\.\d+)?"),
    ("IDENT", r"[A-Za-z_][A-Za-z0-9_]*"),
    ("STRING", r'"(?:[^"\\]|\\.)*"'),
    ("OP", r"==|!=|<=|>=|[+\-*/=<>(),]"),
    ("NEWLINE", r"\n"),
    ("SKIP", r"[ \t]+"),
    ("COMMENT", r"#[^\n]*"),
    ("MISMATCH", r"."),
]
KEYWORDS = {"let", "if", "else", "while", "print"}


class TokenizeError(Exception):
    pass


def tokenize(source):
    pattern = "|".join(f"(?P<{name}>{regex})" for name, regex in TOKEN_SPEC)
    line = 1
    line_start = 0
    for match in re.finditer(pattern, source):
        kind = match.lastgroup
        value = match.group()
        column = match.start() - line_start + 1
        if kind == "NEWLINE":
            line += 1
            line_start = match.end()
            continue
        if kind in ("SKIP", "COMMENT"):
            continue
        if kind == "MISMATCH":
            raise TokenizeError(f"unexpected {value!r} at {line}:{column}")
        if kind == "IDENT" and value in KEYWORDS:
            kind = value.upper()
        elif kind == "NUMBER":
            value = float(value) if "." in value else int(value)
        elif kind == "STRING":
            value = bytes(value[1:-1], "utf-8").decode("unicode_escape")
        yield kind, value, line, column


def kinds(source):
    return [t[0] for t in tokenize(source)]


def test_empty_source_has_no_tokens():
    assert list(tokenize("")) == []


def test_integer_and_float():
    tokens = list(tokenize("42 3.14"))
    assert tokens[0][:2] == ("NUMBER", 42)
    assert tokens[1][:2] == ("NUMBER", 3.14)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("let x = 1", ["LET", "IDENT", "OP", "NUMBER"]),
        ("if a >= b", ["IF", "IDENT", "OP", "IDENT"]),
        ("print(\"hi\")", ["PRINT", "OP", "STRING", "OP"]),
        ("x # trailing comment", ["IDENT"]),
    ],
)
def test_token_kinds(source, expected):
    assert kinds(source) == expected


def test_keywords_are_case_sensitive():
    assert kinds("Let") == ["IDENT"]


def test_string_escapes():
    (_, value, _, _), = tokenize(r'"a\tb\n"')
    assert value == "a\tb\n"


def test_positions_across_lines():
    tokens = list(tokenize("a\n  b"))
    assert [(t[2], t[3]) for t in tokens] == [(1, 1), (2, 3)]


def test_two_char_operators_win():
    ops = [t[1] for t in tokenize("a == b != c <= d") if t[0] == "OP"]
    assert ops == ["==", "!=", "<="]


def test_mismatch_reports_location():
    with pytest.raises(TokenizeError, match=r"unexpected '\$' at 2:3"):
        list(tokenize("ok\nx $"))


@pytest.fixture
def program():
    return (
        "let total = 0\n"
        "while total < 10\n"
        "    let total = total + 2.5\n"
        "print(total)\n"
    )


def test_full_program(program):
    tokens = list(tokenize(program))
    assert tokens[0][0] == "LET"
    assert sum(1 for t in tokens if t[0] == "NUMBER") == 3
    assert tokens[-1] == ("OP", ")", 4, 12)
