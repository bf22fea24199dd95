"""Calibration loaders, the FIM transform (exact strings), deterministic blocks, bad input."""

import json
import random

import pytest
import torch

import calibration_data as cd
from modeling import load_tokenizer


@pytest.fixture(scope="module")
def tok(tiny_path):
    return load_tokenizer(tiny_path)


def test_bundled_corpus_covers_the_three_languages_and_is_separate_from_held_out():
    paths = cd._files_under(cd.SPLITS["bundled"])
    held = cd._files_under(cd.SPLITS["heldout"])
    for ext in (".py", ".java", ".js"):
        assert sum(p.endswith(ext) for p in paths) >= 15 and sum(p.endswith(ext) for p in held) >= 3
    size = sum(len(t) for t in cd.load_texts("bundled"))
    assert 150_000 <= size <= 300_000  # enough for 128 x 512 tokens without heavy repetition
    assert not set(cd.load_texts("bundled")) & set(cd.load_texts("heldout"))


def test_fim_transform_exact_strings():
    class Cuts(random.Random):  # cut points 2 and 5 of "abcdefgh"
        def __init__(self):
            super().__init__()
            self.cuts = [5, 2]

        def randint(self, a, b):
            return self.cuts.pop()

    assert cd.fim_transform("abcdefgh", Cuts()) == "<fim-prefix>ab<fim-suffix>fgh<fim-middle>cde"
    assert cd.fim_transform("abcdefgh", Cuts(), spm=True) == "<fim-prefix><fim-suffix>fgh<fim-middle>abcde"
    # any seed: the three pieces put back in order give the document
    rng = random.Random(3)
    for _ in range(20):
        out = cd.fim_transform("def f(x):\n    return x\n", rng)
        pre, rest = out[len("<fim-prefix>"):].split("<fim-suffix>")
        suf, mid = rest.split("<fim-middle>")
        assert pre + mid + suf == "def f(x):\n    return x\n"


def test_user_sources_folder_glob_file_jsonl(tmp_path):
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "B.java").write_text("class B {}\n")
    (tmp_path / "c.md").write_text("ignored")
    (tmp_path / "d.jsonl").write_text(json.dumps({"content": "x = 1"}) + "\n\n" + json.dumps({"text": "y = 2"}) + "\n")
    assert cd.load_texts(str(tmp_path)) == ["print(1)\n", "x = 1", "y = 2", "class B {}\n"]
    assert cd.load_texts(str(tmp_path / "**" / "*.java")) == ["class B {}\n"]
    assert cd.load_texts(str(tmp_path / "d.jsonl")) == ["x = 1", "y = 2"]


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value), str(e.value)


def test_bad_sources(tmp_path, tok):
    one_line_error("no .py/.java/.js/.txt/.jsonl files found", cd.load_texts, str(tmp_path))
    (tmp_path / "empty.py").write_text("  \n")
    one_line_error("no text in its 1 files", cd.load_texts, str(tmp_path))
    (tmp_path / "bad.jsonl").write_text('{"code": "x"}\n')
    one_line_error(r"bad.jsonl:1: no string field 'text' or 'content'", cd.load_texts, str(tmp_path / "bad.jsonl"))
    (tmp_path / "broken.jsonl").write_text('{"text": \n')
    one_line_error(r"broken.jsonl:1: not valid JSON", cd.load_texts, str(tmp_path / "broken.jsonl"))
    small = tmp_path / "small"
    small.mkdir()
    (small / "s.py").write_text("x = 1\n")
    one_line_error("fewer than one block of seq_len=64", cd.calibration_blocks, tok, str(small), n_samples=4, seq_len=64)
    one_line_error("n_samples=0", cd.calibration_blocks, tok, n_samples=0)
    one_line_error(r"fim_rate=1.5 and spm_rate=0.5 must lie in \[0, 1\]", cd.calibration_blocks, tok, fim_rate=1.5)


def test_blocks_are_deterministic_distinct_and_carry_fim_tokens(tok):
    a = cd.calibration_blocks(tok, n_samples=64, seq_len=256, seed=1)
    assert a.shape == (64, 256) and a.dtype == torch.long
    assert torch.equal(a, cd.calibration_blocks(tok, n_samples=64, seq_len=256, seed=1))
    assert not torch.equal(a, cd.calibration_blocks(tok, n_samples=64, seq_len=256, seed=2))
    assert len({tuple(r.tolist()) for r in a}) == 64
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<|endoftext|>")}
    counts = {t: int((a == i).sum()) for t, i in ids.items()}
    assert all(c > 0 for c in counts.values()), counts
    none = cd.calibration_blocks(tok, n_samples=64, seq_len=256, seed=1, fim_rate=0.0)
    assert int((none == ids["<fim-middle>"]).sum()) == 0


def test_small_source_reuses_windows_with_a_warning(tmp_path, tok, caplog):
    (tmp_path / "m.py").write_text("def f(x):\n    return x + 1\n" * 40)
    with caplog.at_level("WARNING"):
        b = cd.calibration_blocks(tok, str(tmp_path), n_samples=8, seq_len=64)
    assert b.shape == (8, 64) and "more overlap" in caplog.text


def test_binary_files_are_refused_alone_and_skipped_in_folders(tmp_path, caplog):
    (tmp_path / "code.py").write_text("def f():\n    return 1\n")
    (tmp_path / "blob.py").write_bytes(b"\x7fELF\x00\x01" * 100)  # NUL bytes
    (tmp_path / "latin.js").write_bytes("var s = 'caf\xe9';\n".encode("latin-1"))  # not UTF-8
    with caplog.at_level("WARNING"):
        assert cd.load_texts(str(tmp_path)) == ["def f():\n    return 1\n"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "skipped 2 binary file(s) (not UTF-8 text): blob.py, latin.js" in warnings[0]
    with pytest.raises(ValueError, match=r"blob.py: not text \(it contains NUL bytes\); give code as text"):
        cd.load_texts(str(tmp_path / "blob.py"))
    with pytest.raises(ValueError, match=r"latin.js: not UTF-8 text \(invalid byte at offset 12\)"):
        cd.load_texts(str(tmp_path / "latin.js"))
    (tmp_path / "code.py").unlink()
    with pytest.raises(ValueError, match=r"no text in its 2 files \(2 binary, 0 empty\)"):
        cd.load_texts(str(tmp_path))


@pytest.mark.parametrize("fim_rate,spm_rate", [(1.0, 0.0), (1.0, 1.0), (0.5, 0.5)])
def test_fim_and_spm_shares_of_the_documents(tok, fim_rate, spm_rate):
    """Each document: FIM with probability fim_rate, in SPM order (<fim-prefix><fim-suffix>...) for a
    spm_rate share of those; counted over the whole bundled corpus."""
    import random

    texts = cd.load_texts("bundled") * 8
    stream = cd._token_stream(tok, texts, random.Random(0), fim_rate, spm_rate)
    pre, suf, eos = (tok.convert_tokens_to_ids(t) for t in ("<fim-prefix>", "<fim-suffix>", "<|endoftext|>"))
    starts = [i for i, t in enumerate(stream) if t == pre]
    spm = sum(stream[i + 1] == suf for i in starts)  # a PSM document with an empty prefix looks the same: rare
    n = stream.count(eos)
    assert n == len(texts) > 500
    fim_share, spm_share = len(starts) / n, spm / max(len(starts), 1)
    assert abs(fim_share - fim_rate) < 0.1, fim_share
    assert abs(spm_share - spm_rate) < 0.1 if 0 < spm_rate < 1 else abs(spm_share - spm_rate) < 0.02, spm_share
