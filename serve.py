"""A local code-completion server for SantaCoder that editors already speak to: llama.cpp's /infill and
/completion, OpenAI's /v1/completions (with suffix), TGI's /generate(_stream) and Ollama's /api/generate.

    python serve.py santacoder-int4                 # http://127.0.0.1:8080
    curl -s 127.0.0.1:8080/infill -d '{"input_prefix": "def add(a, b):\\n    ", "input_suffix": "\\n", "n_predict": 16}'

Needs the serve extra: pip install -e ".[serve]". Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys


def parse_args(argv=None):
    from modeling.cli import ArgumentParser

    p = ArgumentParser(prog=os.path.basename(__file__), description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint folder or hub id (quantized or not)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--api-key", default=os.environ.get("SANTACODER_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on every route but /health (or $SANTACODER_API_KEY)")
    p.add_argument("--fim-mode", choices=["spm", "psm"], default="spm",
                   help="FIM order of the prompts the server builds (spm: the cursor comes last, so typing "
                        "keeps the prompt cache valid)")
    p.add_argument("--ctx", type=int, default=None, help="context in tokens, prompt + completion (default: the model's)")
    p.add_argument("--slots", type=int, default=4, help="prompt-cache entries (KV caches of recent prompts)")
    p.add_argument("--max-queue", type=int, default=8, help="requests waiting for the model; more get 503")
    p.add_argument("--max-body", type=int, default=4 << 20, help="largest request body in bytes (413 above)")
    p.add_argument("--revision", default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default=None, help="fp32, bf16 or fp16 (default: bf16 on CPU, fp16 on CUDA)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--prompt-lookup", type=int, default=5, metavar="K",
                   help="prompt-lookup decoding: draft up to K tokens per forward from the prompt and output "
                        "(default 5: on CPU int4 the draft length that kept every editing task of "
                        "bench_speculative.py at 2x or more with the file's own text; 0 = off; requests may set "
                        "prompt_lookup; greedy text is unchanged, a seeded sample differs from one drawn without it)")
    args = p.parse_args(argv)
    for name in ("port", "slots", "max_queue", "max_body"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if args.ctx is not None and args.ctx < 2:
        p.error(f"--ctx must be >= 2 (got {args.ctx})")
    if args.api_key is not None and not args.api_key.strip():
        p.error("--api-key is empty")
    if not 0 <= args.prompt_lookup <= 64:
        p.error(f"--prompt-lookup must lie in [0, 64], 0 = off (got {args.prompt_lookup})")
    return args


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def port_free(host: str, port: int) -> str | None:
    """None when host:port can be listened on, else why not (checked before the model loads)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        import uvicorn

        from server import Engine, create_app
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from modeling import CheckpointError, ConfigError, SantaCoderForCausalLM

    why = port_free(args.host, args.port)
    if why:
        print(f"error: --host {args.host} --port {args.port}: {why}", file=sys.stderr)
        return 2

    if not loopback(args.host) and not args.api_key:
        logging.warning("listening on %s without --api-key: anyone who can reach this port can use the model",
                        args.host)
    try:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = SantaCoderForCausalLM.from_pretrained(args.model, revision=args.revision, dtype=args.dtype,
                                                      device=args.device)
        engine = Engine(model, ctx=args.ctx, slots=args.slots, max_queue=args.max_queue, fim_mode=args.fim_mode,
                        prompt_lookup=args.prompt_lookup)
    except (CheckpointError, ConfigError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    name = os.path.basename(os.path.normpath(args.model)) if os.path.isdir(args.model) else args.model
    app = create_app(engine, name, api_key=args.api_key, max_body=args.max_body)
    logging.info("serving %s on http://%s:%d (FIM %s, context %d, %d cache slots, prompt lookup %d)", name, args.host,
                 args.port, args.fim_mode, engine.ctx, len(engine.slots), args.prompt_lookup)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except SystemExit as e:  # uvicorn exits (after logging why) when it cannot bind: taken since the check
        return 2 if e.code else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
