"""Checkpoint layouts, file formats and every bad-input path of loading."""

import json
import os
import pickle

import pytest
import torch

from conftest import reference_model, save_reference, to_remote_code
from modeling import CheckpointError, ConfigError, SantaCoderForCausalLM
from modeling import loading

X = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(0))


def logits(model):
    with torch.no_grad():
        return model(X).logits


@pytest.mark.parametrize("multi_query", [True, False], ids=["mqa", "mha"])
@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_remote_code_layout_loads_to_identical_logits(tmp_path, multi_query, fmt):
    ref = reference_model(multi_query=multi_query)
    bigcode = SantaCoderForCausalLM.from_pretrained(save_reference(ref, tmp_path / "bigcode"), dtype="fp32")
    remote = SantaCoderForCausalLM.from_pretrained(to_remote_code(ref, tmp_path / "remote", fmt), dtype="fp32")
    assert remote.config.checkpoint_layout == "remote_code"
    assert torch.equal(logits(remote), logits(bigcode))
    with torch.no_grad():
        assert torch.allclose(logits(remote), ref(X).logits, atol=1e-4)


def test_sharded_safetensors_and_bin_load(tmp_path):
    ref = reference_model()
    ref.save_pretrained(tmp_path / "sharded", safe_serialization=True, max_shard_size="100KB")
    assert os.path.exists(tmp_path / "sharded" / "model.safetensors.index.json")
    sharded = SantaCoderForCausalLM.from_pretrained(tmp_path / "sharded", dtype="fp32")
    os.makedirs(tmp_path / "bin")
    torch.save(ref.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    (tmp_path / "bin" / "config.json").write_text((tmp_path / "sharded" / "config.json").read_text())
    binary = SantaCoderForCausalLM.from_pretrained(tmp_path / "bin", dtype="fp32")
    with torch.no_grad():
        expected = ref(X).logits
    assert torch.allclose(logits(sharded), expected, atol=1e-4)
    assert torch.equal(logits(binary), logits(sharded))


def test_save_pretrained_round_trip_and_transformers_reads_it(tmp_path):
    from transformers import GPTBigCodeForCausalLM

    ref = reference_model(multi_query=False)
    remote = SantaCoderForCausalLM.from_pretrained(to_remote_code(ref, tmp_path / "remote"), dtype="fp32")
    remote.save_pretrained(tmp_path / "saved")
    again = SantaCoderForCausalLM.from_pretrained(tmp_path / "saved", dtype="fp32")
    assert torch.equal(logits(again), logits(remote))
    theirs = GPTBigCodeForCausalLM.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        assert torch.allclose(theirs(X).logits, logits(again), atol=1e-4)
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir()), "temporary folder left behind"


def test_dtypes_and_meta_free_load(tmp_path):
    path = save_reference(reference_model(), tmp_path)
    for name, dtype in [("fp32", torch.float32), ("bf16", torch.bfloat16), ("float16", torch.float16)]:
        m = SantaCoderForCausalLM.from_pretrained(path, dtype=name)
        assert m.transformer.h[0].attn.c_attn.weight.dtype == dtype
        assert m.transformer.h[0].ln_1.weight.dtype == torch.float32  # LayerNorms stay fp32
        assert not any(t.is_meta for t in m.state_dict().values())
        assert m.lm_head.weight is m.transformer.wte.weight
    assert SantaCoderForCausalLM.from_pretrained(path).dtype == torch.bfloat16  # CPU default


# -- bad input -------------------------------------------------------------------------------------

def err(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg, "errors are one line"
    return msg


def test_missing_folder_and_bad_hub_id(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(tmp_path / "nope")
    assert "no such folder" in err(e)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained("no-such-owner/no-such-model")
    assert "no-such-owner/no-such-model" in err(e) and "hub" in err(e)


def test_missing_or_unknown_config(tmp_path):
    path = save_reference(reference_model(), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").unlink()
    with pytest.raises(ConfigError, match="no config.json"):
        SantaCoderForCausalLM.from_pretrained(path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        SantaCoderForCausalLM.from_pretrained(path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ConfigError) as e:
        SantaCoderForCausalLM.from_pretrained(path)
    assert "unsupported architecture" in err(e) and "llama" in err(e) and "config.json" in err(e)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "activation_function": "relu"}))
    with pytest.raises(ConfigError, match="activation_function='relu'"):
        SantaCoderForCausalLM.from_pretrained(path)
    del cfg["n_layer"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="missing required key 'n_layer'"):
        SantaCoderForCausalLM.from_pretrained(path)


def test_no_weights(tmp_path):
    save_reference(reference_model(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights found"):
        SantaCoderForCausalLM.from_pretrained(tmp_path)


def _rewrite(tmp_path, fn):
    from safetensors.torch import load_file, save_file

    sd = load_file(tmp_path / "model.safetensors")
    fn(sd)
    save_file(sd, tmp_path / "model.safetensors")


def test_missing_tensors_are_listed(tmp_path):
    save_reference(reference_model(), tmp_path)
    _rewrite(tmp_path, lambda sd: [sd.pop(k) for k in ("transformer.h.1.mlp.c_fc.bias", "transformer.ln_f.weight")])
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(tmp_path)
    assert "missing tensors" in err(e)
    assert "transformer.h.1.mlp.c_fc.bias" in err(e) and "transformer.ln_f.weight" in err(e)


def test_renamed_tensor_names_both_names(tmp_path):
    save_reference(reference_model(), tmp_path)
    _rewrite(tmp_path, lambda sd: sd.__setitem__("transformer.h.1.mlp.c_fc.bias_renamed",
                                                 sd.pop("transformer.h.1.mlp.c_fc.bias")))
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(tmp_path)
    assert err(e).endswith("missing tensors: transformer.h.1.mlp.c_fc.bias; "
                           "found instead: transformer.h.1.mlp.c_fc.bias_renamed")


def test_local_looking_paths_and_offline_hub_ids_fail_at_once(tmp_path, monkeypatch):
    import time

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(loading, "hub_reachable", lambda: pytest.fail("a local-looking path must not reach the hub"))
    for path in ("out/int8", "./int8", "a/b/c"):  # out/ exists here, so out/int8 is a path, not a hub id
        with pytest.raises(CheckpointError) as e:
            SantaCoderForCausalLM.from_pretrained(path)
        assert err(e) == f"{path}: no such folder"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained("owner/model")
    assert err(e) == "owner/model: no such folder, and not in the local hub cache (HF_HUB_OFFLINE is set)"
    assert time.perf_counter() - t0 < 5  # no retries (huggingface_hub's own take ~25 s offline)


def test_wrong_shape_names_tensor_expected_and_got(tmp_path):
    save_reference(reference_model(), tmp_path)
    _rewrite(tmp_path, lambda sd: sd.__setitem__("transformer.h.0.attn.c_attn.weight", torch.zeros(64 + 2 * 64, 64)))
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(tmp_path)
    assert "transformer.h.0.attn.c_attn.weight expected (96, 64) got (192, 64)" in err(e)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_bin_that_is_not_a_plain_state_dict_is_refused(tmp_path):
    ref = reference_model()
    save_reference(ref, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save({"model": ref.state_dict(), "step": 3}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(tmp_path)
    assert "not a plain state dict" in err(e)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for save in (lambda f: pickle.dump({"x": Evil()}, f), lambda f: torch.save({"x": Evil()}, f)):
            with open(tmp_path / "pytorch_model.bin", "wb") as f:
                save(f)
            with pytest.raises(CheckpointError) as e:
                SantaCoderForCausalLM.from_pretrained(tmp_path)
            assert "refused to load" in err(e) and "weights_only" not in err(e)  # no advice to run the code
            assert "posix.system" in err(e) or "Unsupported" in err(e)  # what the file holds
    finally:
        os.chdir(cwd)
    assert not (tmp_path / "pwned").exists()


def test_missing_shard_and_truncated_file(tmp_path):
    ref = reference_model()
    ref.save_pretrained(tmp_path / "s", safe_serialization=True, max_shard_size="100KB")
    index = json.loads((tmp_path / "s" / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    (tmp_path / "s" / shard).unlink()
    with pytest.raises(CheckpointError, match=f"shard file\\(s\\) missing: {shard}"):
        SantaCoderForCausalLM.from_pretrained(tmp_path / "s")
    save_reference(ref, tmp_path / "t")
    data = (tmp_path / "t" / "model.safetensors").read_bytes()
    (tmp_path / "t" / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        SantaCoderForCausalLM.from_pretrained(tmp_path / "t")


def test_bad_dtype_and_device(tmp_path):
    path = save_reference(reference_model(), tmp_path)
    with pytest.raises(ValueError, match="dtype 'int8' is not supported"):
        SantaCoderForCausalLM.from_pretrained(path, dtype="int8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            SantaCoderForCausalLM.from_pretrained(path, device="cuda")


PEAK_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from modeling.memory import peak_rss_mib
from modeling import SantaCoderForCausalLM
import safetensors.torch
base = peak_rss_mib()
m = SantaCoderForCausalLM.from_pretrained({path!r}, dtype={dtype!r})
with torch.no_grad():
    m(torch.zeros(1, 4, dtype=torch.long))  # touch every weight
peak = peak_rss_mib()
weights = sum(p.numel() * p.element_size() for p in m.parameters())  # the tied lm_head counted once
largest_on_disk = max(p.numel() for p in m.parameters()) * 2  # the file is bf16
print(int((peak - base) * 2**20), weights, largest_on_disk)
"""


@pytest.mark.parametrize("dtype", ["bf16", "fp32"])
def test_load_peak_memory_is_about_one_copy(tmp_path, dtype):
    """Loading a 234 MB bf16 checkpoint (as bf16, and converted to fp32) and running it: the process
    grows by the weights plus one tensor in flight (here wte, 100 MB), not by the file plus the weights."""
    import subprocess
    import sys

    from conftest import ROOT
    from modeling import SantaCoderConfig

    cfg = SantaCoderConfig(n_layer=6, n_embd=1024, n_head=8, vocab_size=49280, n_positions=2048)
    SantaCoderForCausalLM.from_config(cfg, dtype=torch.bfloat16).save_pretrained(tmp_path)
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT.format(root=ROOT, path=str(tmp_path), dtype=dtype)],
                         capture_output=True, text=True, check=True)
    grown, weights, largest = map(int, out.stdout.split())
    assert grown < weights + largest + 48e6, f"peak grew {grown / 1e6:.0f} MB for {weights / 1e6:.0f} MB of weights"


def test_hub_id_fetches_config_tokenizer_and_one_weight_format(tmp_path, monkeypatch):
    """The hub path with huggingface_hub's two calls served from a local folder (no network)."""
    import shutil

    import huggingface_hub

    ref = reference_model()
    repo = tmp_path / "repo"
    ref.save_pretrained(repo, safe_serialization=True, max_shard_size="100KB")
    torch.save(ref.state_dict(), repo / "pytorch_model.bin")  # both formats on the hub: take safetensors
    (repo / "modeling_gpt2_mq.py").write_text("raise SystemExit('remote code must never be fetched')")
    fetched, cache = [], tmp_path / "cache"

    def list_repo_files(repo_id, revision=None):
        assert (repo_id, revision) == ("bigcode/santacoder", "mha")
        return sorted(p.name for p in repo.iterdir())

    def hf_hub_download(repo_id, filename, revision=None):
        fetched.append(filename)
        os.makedirs(cache, exist_ok=True)
        return shutil.copy(repo / filename, cache / filename)

    monkeypatch.setattr(huggingface_hub, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(loading, "hub_reachable", lambda: True)  # the one probe of the real hub, skipped
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = SantaCoderForCausalLM.from_pretrained("bigcode/santacoder", revision="mha", dtype="fp32")
    assert "pytorch_model.bin" not in fetched and "modeling_gpt2_mq.py" not in fetched
    assert fetched[0] == "config.json" and "model.safetensors.index.json" in fetched
    assert sum(f.startswith("model-") for f in fetched) >= 2  # every shard
    with torch.no_grad():
        assert torch.allclose(model(X).logits, ref(X).logits, atol=1e-4)


def test_bad_shard_index_is_named(tmp_path):
    reference_model().save_pretrained(tmp_path, safe_serialization=True, max_shard_size="100KB")
    index = tmp_path / "model.safetensors.index.json"
    for text, cause in [("{not json", "Expecting property name"), (json.dumps({"metadata": {}}), "'weight_map'")]:
        index.write_text(text)
        with pytest.raises(CheckpointError) as e:
            SantaCoderForCausalLM.from_pretrained(tmp_path)
        assert err(e).startswith(f"{index}: not a valid shard index (") and cause in err(e)


def test_tensor_that_cannot_be_read_names_file_and_tensor(tmp_path, monkeypatch):
    """A read error after the header was read (here an I/O error raised by a stand-in for the file handle)."""
    import safetensors

    save_reference(reference_model(), tmp_path)
    real_open = safetensors.safe_open

    class FailingHandle:
        def __init__(self, *args, **kwargs):
            self.real = real_open(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.real, name)

        def get_tensor(self, name):
            if name == "transformer.h.1.mlp.c_proj.weight":
                raise OSError(5, "Input/output error")
            return self.real.get_tensor(name)

    monkeypatch.setattr(safetensors, "safe_open", FailingHandle)
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(tmp_path)
    assert err(e) == (f"{tmp_path / 'model.safetensors'}: tensor transformer.h.1.mlp.c_proj.weight could not be read "
                      "([Errno 5] Input/output error)")


def test_lm_head_of_the_wrong_shape_is_named(tmp_path):
    save_reference(reference_model(), tmp_path)
    _rewrite(tmp_path, lambda sd: sd.__setitem__("lm_head.weight", torch.zeros(98, 64)))
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained(tmp_path)
    assert err(e) == f"{tmp_path}: lm_head.weight expected (97, 64) got (98, 64)"
    _rewrite(tmp_path, lambda sd: sd.__setitem__("lm_head.weight", sd["transformer.wte.weight"].clone()))
    assert SantaCoderForCausalLM.from_pretrained(tmp_path).lm_head.weight.shape == (97, 64)  # a right copy is fine


@pytest.mark.parametrize("files,message", [
    (["model.safetensors", "tokenizer.json"], "owner/model: the hub repository has no config.json"),
    (["config.json", "tokenizer.json", "README.md"],
     "owner/model: the hub repository has none of model.safetensors.index.json, model.safetensors, "
     "pytorch_model.bin.index.json, pytorch_model.bin"),
])
def test_hub_repo_without_config_or_weights(monkeypatch, files, message):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo_id, revision=None: files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("nothing is downloaded"))
    monkeypatch.setattr(loading, "hub_reachable", lambda: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(CheckpointError) as e:
        SantaCoderForCausalLM.from_pretrained("owner/model")
    assert err(e) == message


def test_missing_tokenizer_is_named(tmp_path):
    from modeling.tokenizer import load_tokenizer

    save_reference(reference_model(), tmp_path)
    with pytest.raises(CheckpointError) as e:
        load_tokenizer(tmp_path)
    assert err(e) == f"{tmp_path}: no tokenizer files (tokenizer.json or vocab.json + merges.txt)"


def test_sharded_bin_index_loads(tmp_path):
    ref = reference_model(multi_query=False)
    state = ref.state_dict()
    names = sorted(state)
    shards = {f"pytorch_model-0000{i + 1}-of-00002.bin": names[i::2] for i in range(2)}
    for file, keys in shards.items():
        torch.save({k: state[k].clone() for k in keys}, tmp_path / file)
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    ref.config.to_json_file(tmp_path / "config.json")
    model = SantaCoderForCausalLM.from_pretrained(tmp_path, dtype="fp32")
    with torch.no_grad():
        assert torch.allclose(logits(model), ref(X).logits, atol=1e-4)
