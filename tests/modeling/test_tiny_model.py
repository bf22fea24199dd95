"""The trained fixture: real tokenizer, FIM, stop strings, streaming, and parity with transformers."""

import pytest
import torch

from modeling import SantaCoderForCausalLM, extract_middle, fim_prompt


@pytest.fixture(scope="module")
def model(tiny_path):
    return SantaCoderForCausalLM.from_pretrained(tiny_path, dtype="fp32")


def test_fixture_greedy_matches_transformers(model, tiny_path):
    from transformers import GPTBigCodeForCausalLM

    ref = GPTBigCodeForCausalLM.from_pretrained(tiny_path, dtype=torch.float32).eval()
    tok = model.tokenizer
    prompts = ["def fibonacci(n):\n", "public static int max(int a, int b) {\n", fim_prompt("function add(a, b) {\n", "\n}\n")]
    for p in prompts:
        x = tok(p, return_tensors="pt").input_ids
        with torch.no_grad():
            assert torch.allclose(model(x).logits, ref(x).logits, atol=1e-4)
        expected = ref.generate(x, max_new_tokens=32, do_sample=False, eos_token_id=None, pad_token_id=0)
        assert torch.equal(model.generate(x, max_new_tokens=32, eos_token_id=[]), expected)


def test_fim_tokens_are_single_special_tokens(model):
    tok = model.tokenizer
    ids = tok(fim_prompt("a = 1\n", "\nprint(a)")).input_ids
    names = tok.convert_ids_to_tokens(ids)
    assert names[0] == "<fim-prefix>" and names[-1] == "<fim-middle>" and "<fim-suffix>" in names
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>"]) == \
        list(range(2000, 2005))


def test_fixture_uses_the_suffix_in_fim(model):
    """The fixture learned FIM: a middle costs fewer nats after <fim-prefix>P<fim-suffix>S<fim-middle> than after P."""
    tok = model.tokenizer
    text = ("def read_config(path):\n    with open(path) as f:\n        data = json.load(f)\n"
            "    return data\n\n\ndef write_config(path, data):\n    with open(path, 'w') as f:\n"
            "        json.dump(data, f)\n")
    losses = {"psm": [], "l2r": []}
    for a, b in [(20, 45), (60, 80), (100, 140), (150, 190)]:
        pre, mid, suf = text[:a], text[a:b], text[b:]
        mid_ids = tok(mid).input_ids + [tok.eos_token_id]
        for kind, ctx in (("psm", tok(fim_prompt(pre, suf)).input_ids), ("l2r", tok(pre).input_ids)):
            ids = torch.tensor([ctx + mid_ids])
            with torch.no_grad():
                lp = model(ids).logits[0, len(ctx) - 1 : -1].log_softmax(-1)
            losses[kind].append(-lp[torch.arange(len(mid_ids)), torch.tensor(mid_ids)].mean().item())
    psm, l2r = sum(losses["psm"]) / 4, sum(losses["l2r"]) / 4
    assert psm < l2r - 0.1, f"middle loss with the suffix {psm:.2f} vs without {l2r:.2f}"


FIB = ("def fibonacci(n):\n    if n < 2:\n        return n\n    ", "\n\n\nprint(fibonacci(10))\n")


@pytest.mark.parametrize("prompt,kind", [(fim_prompt(*FIB, mode="spm"), "fim"),
                                         ('    return result\n\n\nif __name__ == "__main__":\n    main()\n', "eos")])
def test_generation_ends_at_eos_and_fim_tokens(model, prompt, kind):
    """Prompts on which the fixture does write a stop token (found by trying): left alone (no stop ids) it
    writes on past it; by default generation ends right after it."""
    from modeling.generation import stop_token_ids

    tok = model.tokenizer
    assert stop_token_ids(model, None) == list(range(2000, 2005))  # <|endoftext|> and the four FIM tokens
    x = tok(prompt, return_tensors="pt").input_ids
    free = model.generate(x, max_new_tokens=24, eos_token_id=[])[0, x.shape[1]:].tolist()
    stop = next(i for i, t in enumerate(free) if t >= 2000)  # measured: 1 (a FIM token) and 17 (EOS)
    assert (free[stop] == tok.eos_token_id) == (kind == "eos") and stop < 23
    out = model.generate(x, max_new_tokens=24)
    assert out[0, x.shape[1]:].tolist() == free[:stop + 1]
    if kind == "fim":
        assert extract_middle(out[0], tok, prefix=FIB[0]) == tok.decode(free[:stop])


def test_stop_strings(model):
    tok = model.tokenizer
    x = tok("import os\nimport sys\n", return_tensors="pt").input_ids
    free = model.generate(x, max_new_tokens=40, eos_token_id=[])
    text = tok.decode(free[0, x.shape[1]:])
    assert "\n" in text[:-1], "the fixture writes lines"
    out = model.generate(x, max_new_tokens=40, stop="\n", eos_token_id=[])
    got = tok.decode(out[0, x.shape[1]:])
    assert got.endswith("\n") and got.count("\n") == 1 and text.startswith(got)


def test_stream_yields_the_same_text_as_generate(model):
    tok = model.tokenizer
    prompt = "class Stack:\n    def __init__(self):\n"
    pieces = list(model.stream(prompt, max_new_tokens=30))
    x = tok(prompt, return_tensors="pt").input_ids
    out = model.generate(x, max_new_tokens=30)
    assert len(pieces) > 3
    assert "".join(pieces) == tok.decode(out[0, x.shape[1]:], skip_special_tokens=True)
    seen = []
    model.generate(x, max_new_tokens=30, streamer=seen.append)
    assert "".join(seen) == "".join(pieces)


def test_batched_prompts_with_tokenizer_padding(model):
    tok = model.tokenizer
    prompts = ["def f(x):\n", "import java.util.List;\n\npublic class A {\n", "const x = "]
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = model.generate(enc.input_ids, attention_mask=enc.attention_mask, max_new_tokens=16, eos_token_id=[])
    for i, p in enumerate(prompts):
        x = tok(p, return_tensors="pt").input_ids
        single = model.generate(x, max_new_tokens=16, eos_token_id=[])
        assert out[i, enc.input_ids.shape[1]:].tolist() == single[0, x.shape[1]:].tolist()


def test_stop_strings_in_a_batch_end_each_row_on_its_own(model):
    tok = model.tokenizer
    prompts = ["import os\nimport sys\n", "def add(a, b):\n"]
    enc = tok(prompts, return_tensors="pt", padding=True)
    T = enc.input_ids.shape[1]
    out = model.generate(enc.input_ids, attention_mask=enc.attention_mask, max_new_tokens=30, stop="\n",
                         eos_token_id=[])
    lengths = []
    for i, p in enumerate(prompts):
        x = tok(p, return_tensors="pt").input_ids
        single = model.generate(x, max_new_tokens=30, stop="\n", eos_token_id=[])[0, x.shape[1]:].tolist()
        assert "\n" in tok.decode(single[-1:]) and "\n" not in tok.decode(single[:-1])  # its last token stops it
        row = out[i, T:].tolist()
        assert row[:len(single)] == single  # the same tokens up to its own stop...
        assert all(t == model.config.pad_token_id for t in row[len(single):])  # ...then padding
        lengths.append(len(single))
    assert lengths[0] != lengths[1] and out.shape[1] == T + max(lengths)  # rows stopped at different steps


def test_streamed_text_never_splits_a_character(model):
    """Characters that take several byte tokens are held back until whole: no piece holds U+FFFD."""
    from modeling.generation import TextDelta

    tok = model.tokenizer
    text = "s = 'caf\u00e9 \u2192 \U0001F600 \u4e2d\u6587'\n"
    ids = tok(text).input_ids
    split = [k for k in range(1, len(ids)) if tok.decode(ids[:k]).endswith("\ufffd")]
    assert len(split) >= 3, "the fixture's tokenizer splits these characters into byte tokens"
    delta = TextDelta(tok)
    pieces = [delta.add(i) for i in ids]
    assert all(pieces[k - 1] == "" for k in split)  # held back while the character is incomplete
    assert "\ufffd" not in "".join(pieces) and "".join(pieces) + delta.flush() == text


def stop_inside_a_token(tok, new):
    """A 2-character stop string that starts inside a token of the greedy completion `new` (after its
    first character) and occurs nowhere earlier; returns (stop, index of that token, text before the stop)."""
    text = tok.decode(new, skip_special_tokens=True)
    ends = [len(tok.decode(new[:i + 1], skip_special_tokens=True)) for i in range(len(new))]
    for i in range(1, len(new)):
        start = ends[i - 1] + 1
        if ends[i] - ends[i - 1] >= 3 and text.find(text[start:start + 2]) == start:
            return text[start:start + 2], i, text[:start]
    pytest.fail("no token of 3+ characters with a fresh 2-character piece")


def test_stop_string_cuts_the_text_exactly_where_it_starts(model):
    tok = model.tokenizer
    prompt = "import os\nimport sys\n"
    x = tok(prompt, return_tensors="pt").input_ids
    new = model.generate(x, max_new_tokens=40, eos_token_id=[])[0, x.shape[1]:].tolist()
    stop, i, before = stop_inside_a_token(tok, new)
    assert "".join(model.stream(prompt, max_new_tokens=40, stop=stop, eos_token_id=[])) == before
    seen = []
    out = model.generate(x, max_new_tokens=40, stop=[stop], eos_token_id=[], streamer=seen.append)
    assert "".join(seen) == before
    assert out[0, x.shape[1]:].tolist() == new[:i + 1]  # token ids keep the whole last token, as transformers does
    # a stop string whose beginning shows up but never the rest: the held-back text comes out at the end
    text = tok.decode(new, skip_special_tokens=True)
    never = text[-3:] + "\x01"
    assert "".join(model.stream(prompt, max_new_tokens=40, stop=never, eos_token_id=[])) == text


def test_prompts_that_are_not_text_are_refused(model):
    from modeling.generation import GenerationArgumentError

    for prompt, why in (("", "prompt is empty"), ("def f():\udcff", "prompt is not valid UTF-8 text")):
        with pytest.raises(GenerationArgumentError, match=why):
            list(model.stream(prompt, max_new_tokens=4))
    with pytest.raises(GenerationArgumentError, match="input_ids must hold at least one token"):
        model.generate(model.tokenizer("", return_tensors="pt").input_ids)
