"""Checkpoint loading and saving.

Flow: resolve the folder (local, or a hub snapshot) -> config.json -> build the model on the `meta`
device -> read each tensor (memory-mapped safetensors, or a weights-only `torch.load` of a .bin),
convert the remote-code layout on the fly, check its shape -> `load_state_dict(assign=True)`.
Only one full copy of the weights exists at any time.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import tempfile
import zipfile

import torch

from .config import SantaCoderConfig

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "added_tokens.json")
SKIPPED_BUFFERS = re.compile(r"\.attn\.(bias|masked_bias)$")  # causal-mask buffers of the remote-code model
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
                      "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file or tensor and the remedy."""


def resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    """None -> the compute dtype of the device (fp16 on CUDA, bf16 elsewhere); strings accepted."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r} is not supported; use one of {sorted(DTYPES)}")
        return DTYPES[dtype]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype {dtype} is not supported; use float32, float16 or bfloat16")
    return dtype


def resolve_device(device) -> torch.device:
    if device is None:
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} requested but CUDA is not available; use --device cpu")
    return device


def resolve_folder(path_or_id: str, revision: str | None = None) -> str:
    """A local folder, or a hub id downloaded (config, weights, tokenizer) with huggingface_hub.

    Something that looks like a path fails at once when it does not exist; a hub id fails in one line,
    without retries, when the hub cannot be reached (HF_HUB_OFFLINE=1 reads the local hub cache only)."""
    path_or_id = os.fspath(path_or_id)
    if os.path.isdir(path_or_id):
        if revision is not None:
            log.warning("revision=%r ignored for the local folder %s", revision, path_or_id)
        return path_or_id
    if looks_local(path_or_id):
        raise CheckpointError(f"{path_or_id}: no such folder")
    from huggingface_hub import snapshot_download

    try:
        if hub_offline() or not hub_reachable():
            folder = snapshot_download(path_or_id, revision=revision, local_files_only=True)
            log.warning("%s: the hub is offline; using the copy in the local hub cache (%s)", path_or_id, folder)
            return folder
    except Exception:
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub cannot be reached"
        raise CheckpointError(f"{path_or_id}: no such folder, and not in the local hub cache ({why})") from None
    try:
        from huggingface_hub import hf_hub_download, list_repo_files

        files = list_repo_files(path_or_id, revision=revision)
        folder = None
        for name in hub_files_to_fetch(files, path_or_id):
            folder = os.path.dirname(hf_hub_download(path_or_id, name, revision=revision))
            if name.endswith(".index.json"):
                with open(os.path.join(folder, name)) as f:
                    for shard in sorted(set(json.load(f)["weight_map"].values())):
                        hf_hub_download(path_or_id, shard, revision=revision)
        return folder
    except CheckpointError:
        raise
    except Exception as e:  # unknown repo, unknown revision, a network error: all end here with the cause named
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(
            f"{path_or_id}: not a local folder, and fetching it from the hub failed ({type(e).__name__}: {first})"
        ) from None


def looks_local(path: str) -> bool:
    """A path rather than an `owner/name` hub id: it starts with . / ~, has no single slash, or its first
    part is a local folder (`out/int8` when ./out exists)."""
    if path.startswith((".", "/", "~")) or os.sep in path.replace("/", "") or path.count("/") != 1:
        return True
    return os.path.isdir(path.split("/")[0])


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), read now: huggingface_hub reads it once, at import."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return env.upper() in ("1", "ON", "YES", "TRUE") or bool(constants.HF_HUB_OFFLINE)


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub's endpoint: huggingface_hub itself retries for ~25 s before failing."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False


def hub_files_to_fetch(files: list[str], repo: str) -> list[str]:
    """config.json, the tokenizer files and the one preferred weight format (safetensors first)."""
    if "config.json" not in files:
        raise CheckpointError(f"{repo}: the hub repository has no config.json")
    weights = next((f for f in WEIGHT_FILES if f in files), None)
    if weights is None:
        raise CheckpointError(f"{repo}: the hub repository has none of {', '.join(WEIGHT_FILES)}")
    return ["config.json", *[f for f in TOKENIZER_FILES + ("generation_config.json",) if f in files], weights]


class TensorSource:
    """Read-only access to the tensors of a checkpoint folder, whatever its file layout."""

    def __init__(self, folder: str):
        self.folder = folder
        self.files: dict[str, str] = {}  # tensor name -> file path
        self._open: dict[str, object] = {}
        found = next((f for f in WEIGHT_FILES if os.path.exists(os.path.join(folder, f))), None)
        if found is None:
            raise CheckpointError(f"{folder}: no weights found (expected one of {', '.join(WEIGHT_FILES)})")
        path = os.path.join(folder, found)
        if found.endswith(".index.json"):
            try:
                with open(path) as f:
                    weight_map = json.load(f)["weight_map"]
            except (json.JSONDecodeError, KeyError) as e:
                raise CheckpointError(f"{path}: not a valid shard index ({e})") from None
            for name, shard in weight_map.items():
                self.files[name] = os.path.join(folder, shard)
            missing = sorted({p for p in self.files.values() if not os.path.exists(p)})
            if missing:
                raise CheckpointError(f"{path}: shard file(s) missing: {', '.join(map(os.path.basename, missing))}")
        else:
            for name in self._handle(path).keys():
                self.files[name] = path

    def _handle(self, path: str):
        if path not in self._open:
            if path.endswith(".safetensors"):
                from safetensors import safe_open

                try:
                    try:  # pread: tensors land in private memory, one copy, no lazily faulted mmap pages
                        self._open[path] = safe_open(path, framework="pt", backend="pread")
                    except TypeError:  # safetensors < 0.8
                        self._open[path] = safe_open(path, framework="pt")
                except Exception as e:
                    raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
            else:
                self._open[path] = _load_bin(path)
        return self._open[path]

    def keys(self):
        return self.files.keys()

    def shape(self, name: str) -> tuple:
        """The tensor's shape, read from the file header (safetensors) without loading the data."""
        h = self._handle(self.files[name])
        return tuple(h.get_slice(name).get_shape() if hasattr(h, "get_slice") else h[name].shape)

    def dtype(self, name: str) -> torch.dtype | str:
        """The tensor's dtype, read from the file header (safetensors) without loading the data."""
        h = self._handle(self.files[name])
        if not hasattr(h, "get_slice"):
            return h[name].dtype
        raw = h.get_slice(name).get_dtype()
        return SAFETENSORS_DTYPES.get(raw, raw)  # an unexpected dtype stays its safetensors name, e.g. "F64"

    def get(self, name: str) -> torch.Tensor:
        h = self._handle(self.files[name])
        try:
            return h.get_tensor(name) if hasattr(h, "get_tensor") else h[name]
        except Exception as e:
            raise CheckpointError(f"{self.files[name]}: tensor {name} could not be read ({e})") from None


def _load_bin(path: str) -> dict:
    """A pytorch_model.bin read with weights_only=True: tensors only, no code is ever run."""
    try:
        # mmap needs the zip format of torch >= 1.6; older files are read whole.
        sd = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        # torch's message starts with advice to retry with weights_only=False, which would run the file's code:
        # keep only the line that names what the file holds.
        what = next((line.strip() for line in str(e).splitlines() if "GLOBAL" in line or "Unsupported" in line),
                    "objects other than tensors")
        raise CheckpointError(
            f"{path}: refused to load, it holds more than tensors ({what.rstrip('.')}); no code from it was run"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable PyTorch file ({type(e).__name__}: {e})") from None
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise CheckpointError(f"{path}: not a plain state dict of name -> tensor; save model.state_dict() instead")
    return sd


def remote_code_tensor(src: TensorSource, name: str, config: SantaCoderConfig) -> torch.Tensor | None:
    """The gpt_bigcode tensor `name` built from a remote-code (GPT2LMHeadCustomModel) checkpoint.

    Conv1D weights are stored [in, out] and are transposed; MQA attention is split in q_attn
    [E, E] and kv_attn [E, 2*hd] (K then V) and is fused into c_attn; the multi-head c_attn stores
    Q | K | V blocks and is reordered to gpt_bigcode's per-head (q, k, v) interleave.
    """
    m = re.fullmatch(r"(transformer\.h\.\d+\.attn)\.c_attn\.(weight|bias)", name)
    if m and config.multi_query:
        prefix, kind = m.groups()
        q, kv = src.get(f"{prefix}.q_attn.{kind}"), src.get(f"{prefix}.kv_attn.{kind}")
        if kind == "weight":
            q, kv = q.t(), kv.t()
        return torch.cat([q, kv], dim=0)  # rows: Q (E) | K (hd) | V (hd)
    if name not in src.keys():
        return None
    t = src.get(name)
    if re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", name):
        t = t.t()  # Conv1D [in, out] -> Linear [out, in]
    if m:  # multi-head c_attn: rows (3, nh, hd) -> (nh, 3, hd)
        nh, hd = config.n_head, config.head_dim
        t = t.reshape(3, nh, hd, *t.shape[1:]).transpose(0, 1).reshape(t.shape)
    return t


def skeleton(cls, config: SantaCoderConfig):
    """The model on the meta device, without running the modules' random init: its weights are about to be
    replaced, and the first init on meta imports torch._dynamo (about 1 s of every load)."""
    modules = (torch.nn.Linear, torch.nn.Embedding, torch.nn.LayerNorm)
    saved = [m.reset_parameters for m in modules]
    try:
        for m in modules:
            m.reset_parameters = lambda self: None
        with torch.device("meta"):
            return cls(config)
    finally:
        for m, f in zip(modules, saved):
            m.reset_parameters = f


def load_config(folder: str) -> SantaCoderConfig:
    return SantaCoderConfig.from_json_file(os.path.join(folder, "config.json"))


def load_model(cls, path_or_id, revision=None, dtype=None, device=None):
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    folder = resolve_folder(path_or_id, revision)
    config = load_config(folder)
    qconf = None
    if config.quantization_config is not None:  # a quantized folder: quant builds the modules it names
        from quant.serialization import quant_config_from_dict

        try:
            qconf = quant_config_from_dict(config.quantization_config, os.path.join(folder, "config.json"))
        except ValueError as e:
            raise CheckpointError(str(e)) from None
    src = TensorSource(folder)
    if qconf is not None:
        pickled = sorted({os.path.basename(p) for p in src.files.values() if not p.endswith(".safetensors")})
        if pickled or config.checkpoint_layout == "remote_code":
            raise CheckpointError(f"{folder}: quantized folders are read from gpt_bigcode-layout safetensors only, "
                                  f"never unpickled (found {', '.join(pickled) or 'a remote-code config'})")
    model = skeleton(cls, config)
    quantized, prebuilt, used_quantized = (), (), set()  # name prefixes of quantized modules
    if qconf is not None:
        from quant import QuantLinear
        from quant.serialization import load_bnb_modules, quantized_skeleton

        if qconf.method == "bnb":  # bnb layers are built from their tensors right away
            try:
                used_quantized = load_bnb_modules(model, qconf, src.get, src.keys(), dtype, device)
            except ValueError as e:
                raise CheckpointError(f"{folder}: {e}") from None
            prebuilt = tuple(n + "." for n, m in model.named_modules() if isinstance(m, QuantLinear))
        else:
            quantized_skeleton(model, qconf)
            quantized = tuple(n + "." for n, m in model.named_modules() if isinstance(m, QuantLinear))
    expected = model.state_dict()
    tied = "lm_head.weight"
    state, missing, bad = {}, [], []
    for name, meta in expected.items():
        if name == tied or name.startswith(prebuilt):
            continue
        if name.startswith(quantized):  # checked from the header now, read layer by layer below
            if name not in src.keys():
                missing.append(name)
            elif (shape := src.shape(name)) != tuple(meta.shape):
                bad.append(f"{name} expected {tuple(meta.shape)} got {shape}")
            elif (dt := src.dtype(name)) != meta.dtype:
                bad.append(f"{name} expected dtype {str(meta.dtype)[6:]} got {str(dt).replace('torch.', '')}")
            continue
        if config.checkpoint_layout == "remote_code":
            t = remote_code_tensor(src, name, config)
        else:
            t = src.get(name) if name in src.keys() else None
        if t is None:
            missing.append(name)
            continue
        if tuple(t.shape) != tuple(meta.shape):
            bad.append(f"{name} expected {tuple(meta.shape)} got {tuple(t.shape)}")
            continue
        target = torch.float32 if ".ln_" in name else dtype  # LayerNorms stay fp32 (see model.py)
        state[name] = t.to(device=device, dtype=target).contiguous()
    used = {k for k in expected if k in src.keys()} | used_quantized | {k for k in src.keys() if k.startswith(quantized)}
    if config.checkpoint_layout == "remote_code":
        used |= {k for k in src.keys() if re.search(r"\.(q_attn|kv_attn)\.", k)}
    unused = [k for k in src.keys() if k not in used and not SKIPPED_BUFFERS.search(k)]
    if missing:  # a renamed tensor shows up as missing under one name and unused under the other
        found = f"; found instead: {', '.join(unused[:8])}{', ...' if len(unused) > 8 else ''}" if unused else ""
        raise CheckpointError(f"{folder}: missing tensors: {', '.join(missing)}{found}")
    if bad:
        raise CheckpointError(f"{folder}: tensors of the wrong shape or dtype: {'; '.join(bad)}")
    if unused:
        log.warning("%s: ignored %d unexpected tensors: %s", folder, len(unused), ", ".join(unused[:8]))
    # lm_head shares wte's storage (tied); a checkpoint's own lm_head copy is checked, then dropped.
    if tied in expected and tied in src.keys() and src.shape(tied) != tuple(expected[tied].shape):
        raise CheckpointError(f"{folder}: lm_head.weight expected {tuple(expected[tied].shape)} got {src.shape(tied)}")
    model.load_state_dict(state, strict=False, assign=True)
    del state  # the model holds the only reference now, so packing replaces weights one by one
    if tied in expected:
        model.lm_head.weight = model.transformer.wte.weight
    model.source = folder
    if quantized:
        from quant.serialization import fill_quantized

        fill_quantized(model, dtype, src.get, device)
    return model.pack_for_cpu().eval()


def random_model(cls, config: SantaCoderConfig, dtype=None, device=None, seed: int = 0):
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    model = skeleton(cls, config).to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name:
                p.data = torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)
            elif name.endswith("bias"):
                p.data = torch.zeros(p.shape, device=device, dtype=dtype)
            else:
                p.data = torch.empty(p.shape, device=device, dtype=torch.float32).normal_(0, 0.02, generator=g).to(dtype)
    model.lm_head.weight = model.transformer.wte.weight
    return model.pack_for_cpu().eval()


def atomic_folder(out_dir: str):
    """A temporary folder next to out_dir; `commit(tmp)` renames it into place."""
    parent = os.path.dirname(os.path.abspath(out_dir)) or "."
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(os.path.abspath(out_dir)) + "-", dir=parent)


def commit_folder(tmp: str, out_dir: str):
    old = None
    if os.path.exists(out_dir):
        old = tmp + ".old"
        os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    if old:
        shutil.rmtree(old)


def shard(state: dict, max_bytes: int) -> list[dict]:
    """Split a state dict, in order, into pieces of at most max_bytes (a larger tensor gets a piece alone)."""
    pieces, size = [{}], 0
    for k, v in state.items():
        n = v.numel() * v.element_size()
        if pieces[-1] and size + n > max_bytes:
            pieces.append({})
            size = 0
        pieces[-1][k] = v
        size += n
    return pieces


REMOTE_CODE_MODULE = "modeling_santacoder_quant"
REMOTE_CODE = '''"""Loads this folder with the santacoder-quant package: AutoModelForCausalLM.from_pretrained(folder,
trust_remote_code=True) gives its SantaCoder model (quantized layers included) as a transformers model."""

try:
    from modeling.hf import SantaCoderQuantForCausalLM  # noqa: F401
except ImportError as e:
    raise ImportError(f"this folder is loaded by the santacoder-quant package, which cannot be imported here ({e}); "
                      f"install it from the project's folder with: pip install -e .") from None
'''


def write_json(path: str, obj: dict, sort_keys: bool = False):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=sort_keys)


def generation_config(model) -> dict:
    """generation_config.json: every token that ends a completion (EOS and the FIM tokens), so that
    transformers' generate stops where this package's does."""
    from .generation import stop_token_ids

    c = model.config
    eos = c.eos_token_id
    if eos is not None:
        others = [i for i in stop_token_ids(model, None) if i != eos]
        eos = [eos, *others] if others else eos
    pad = c.pad_token_id if c.pad_token_id is not None else c.eos_token_id
    return {"bos_token_id": c.bos_token_id, "eos_token_id": eos, "pad_token_id": pad}


def apply_umask(folder: str):
    """Give a folder made by mkdtemp (0700) and the files in it (safetensors writes 0600) the modes a plain
    mkdir and open would have: 0755 / 0644 under the usual umask 022."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for name in os.listdir(folder):
        os.chmod(os.path.join(folder, name), 0o666 & ~mask)


def save_model(model, out_dir: str, max_shard_bytes: int = 2 * 1024**3):
    from safetensors.torch import save_file

    tmp = atomic_folder(out_dir)
    try:
        tied = getattr(model.lm_head, "weight", None) is model.transformer.wte.weight  # safetensors refuses shared tensors
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}
        config = model.config.to_dict()
        if getattr(model, "quant_config", None) is not None:
            from quant.serialization import quantization_config

            config["quantization_config"] = quantization_config(model.quant_config)
        config["tie_word_embeddings"] = tied  # a quantized lm_head is its own tensor; loaders must not tie it
        config.pop("torch_dtype", None)  # the source's dtype, not necessarily the one saved here
        config["dtype"] = str(model.dtype).removeprefix("torch.")  # what transformers' dtype="auto" loads
        pieces = shard(state, max_shard_bytes)
        if len(pieces) == 1:
            save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        else:  # transformers' sharded layout: numbered files and an index naming each tensor's file
            weight_map = {}
            for i, piece in enumerate(pieces, 1):
                name = f"model-{i:05d}-of-{len(pieces):05d}.safetensors"
                save_file(piece, os.path.join(tmp, name), metadata={"format": "pt"})
                weight_map.update(dict.fromkeys(piece, name))
            total = sum(v.numel() * v.element_size() for v in state.values())
            with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        # transformers' AutoModelForCausalLM(..., trust_remote_code=True) builds this package's model from the
        # folder's small module (modeling/hf.py); without remote code an unquantized folder stays gpt_bigcode.
        config["auto_map"] = {"AutoModelForCausalLM": f"{REMOTE_CODE_MODULE}.SantaCoderQuantForCausalLM"}
        write_json(os.path.join(tmp, "config.json"), config, sort_keys=True)
        with open(os.path.join(tmp, REMOTE_CODE_MODULE + ".py"), "w") as f:
            f.write(REMOTE_CODE)
        write_json(os.path.join(tmp, "generation_config.json"), generation_config(model))
        if model.source is not None:
            for name in TOKENIZER_FILES:
                if os.path.exists(os.path.join(model.source, name)):
                    shutil.copy(os.path.join(model.source, name), tmp)
            tokenizer_config = os.path.join(tmp, "tokenizer_config.json")
            if os.path.exists(tokenizer_config):
                with open(tokenizer_config) as f:
                    tc = json.load(f)
                # Generation pads on the left; SantaCoder's tokenizer has no pad token, <|endoftext|> serves.
                tc["padding_side"] = "left"
                if tc.get("pad_token") is None and tc.get("eos_token") is not None:
                    tc["pad_token"] = tc["eos_token"]
                write_json(tokenizer_config, tc)
        apply_umask(tmp)
        commit_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
