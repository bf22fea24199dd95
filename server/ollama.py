"""Ollama's dialect: POST /api/generate (with `suffix` for fill-in-the-middle; streams newline-delimited
JSON by default), POST /api/show, GET /api/tags, GET /api/version. Continue's ollama provider sends
`suffix` only to a model whose /api/show template mentions `.Suffix`, as ours does."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from .app import engine_of, error_body, finish, n_tokens, sampling, start
from .engine import Job, Result

router = APIRouter(prefix="/api")


class Options(BaseModel):
    model_config = ConfigDict(extra="ignore")
    num_predict: int | None = None
    temperature: float = 0.8  # Ollama's defaults
    top_k: int = 40
    top_p: float = 0.9
    stop: list[str] = []
    seed: int | None = None
    prompt_lookup: int | None = None  # this server's


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = ""
    prompt: str = ""
    suffix: str | None = None
    raw: bool = False
    stream: bool = True
    options: Options = Options()


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def done(request: Request, r: Result, response: str, t0: float) -> dict:
    return {"model": request.app.state.model_name, "created_at": now(), "response": response, "done": True,
            "done_reason": "length" if r.finish in ("length", "time") else "stop", "context": [],
            "total_duration": int((time.perf_counter() - t0) * 1e9), "load_duration": 0,
            "prompt_eval_count": r.prompt_n, "prompt_eval_duration": int(r.prompt_ms * 1e6),
            "eval_count": len(r.tokens), "eval_duration": int(r.predicted_ms * 1e6)}


@router.post("/generate")
async def generate(request: Request, body: GenerateRequest):
    t0 = time.perf_counter()
    o, engine = body.options, engine_of(request)
    if not body.prompt and body.suffix is None:  # Ollama's "load the model" call: it is loaded
        return {"model": request.app.state.model_name, "created_at": now(), "response": "", "done": True,
                "done_reason": "load"}
    n = n_tokens(o.num_predict, "options.num_predict", 128)
    if body.suffix is not None:
        ids, truncated = engine.fim_prompt(body.prompt, body.suffix, n)
    else:
        ids, truncated = engine.text_prompt(body.prompt, n)
    job = Job(ids=ids, max_new_tokens=n, stop=o.stop, seed=o.seed, truncated=truncated, prompt_lookup=o.prompt_lookup,
              **sampling(o.temperature, o.top_k, o.top_p))
    if not body.stream:
        r = await finish(request, job)
        return done(request, r, r.text, t0)

    async def lines():
        async for event in start(request, job):
            if event[0] == "token":
                if event[2]:
                    piece = {"model": request.app.state.model_name, "created_at": now(), "response": event[2],
                             "done": False}
                    yield json.dumps(piece) + "\n"
            elif event[0] == "end":
                yield json.dumps(done(request, event[1], "", t0)) + "\n"
            else:
                yield json.dumps(error_body(request.url.path, 500, event[1])) + "\n"
    return StreamingResponse(lines(), media_type="application/x-ndjson")


class ShowRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = ""
    name: str = ""


# What a Modelfile template would say (the PSM form, for clients that look for .Suffix); the server builds
# the FIM prompt itself, in its own order (server/engine.py, SPM by default).
TEMPLATE = ("{{- if .Suffix }}<fim-prefix>{{ .Prompt }}<fim-suffix>{{ .Suffix }}<fim-middle>"
            "{{- else }}{{ .Prompt }}{{- end }}")


@router.post("/show")
async def show(request: Request, body: ShowRequest):
    engine = engine_of(request)
    return {"modelfile": "", "parameters": "", "template": TEMPLATE, "capabilities": ["completion", "insert"],
            "details": {"family": "gpt_bigcode", "format": "safetensors"},
            "model_info": {"general.architecture": "gpt_bigcode", "gpt_bigcode.context_length": engine.ctx}}


@router.get("/tags")
async def tags(request: Request):
    name = request.app.state.model_name
    return {"models": [{"name": name, "model": name, "modified_at": now(), "size": 0, "digest": "",
                        "details": {"family": "gpt_bigcode", "format": "safetensors"}}]}


@router.get("/version")
async def version():
    return {"version": "0.1.0"}
