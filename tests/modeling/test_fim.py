import pytest

from modeling import extract_middle, fim_prompt


def test_fim_prompt_strings():
    assert fim_prompt("def f(", "):\n") == "<fim-prefix>def f(<fim-suffix>):\n<fim-middle>"
    assert fim_prompt("a", "b", mode="spm") == "<fim-prefix><fim-suffix>b<fim-middle>a"
    with pytest.raises(ValueError, match="'xyz'"):
        fim_prompt("a", "b", mode="xyz")


def test_extract_middle():
    text = "<fim-prefix>def f(<fim-suffix>):\n<fim-middle>x, y<|endoftext|>junk"
    assert extract_middle(text) == "x, y"
    assert extract_middle("<fim-prefix>a<fim-suffix>b<fim-middle>cut here") == "cut here"
    assert extract_middle("<fim-prefix>a<fim-suffix>b<fim-middle>mid<fim-pad>more") == "mid"
    spm = fim_prompt("def f(", "):\n", mode="spm") + "x, y<|endoftext|>"
    assert extract_middle(spm, prefix="def f(") == "x, y"
    with pytest.raises(ValueError, match="no <fim-middle>"):
        extract_middle("plain text")
    with pytest.raises(ValueError, match="tokenizer"):
        extract_middle([1, 2, 3])
