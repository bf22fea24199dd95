"""OpenAI's completions dialect: POST /v1/completions (with `suffix` for fill-in-the-middle) and
GET /v1/models, as the `openai` client and Tabby's / Continue's openai providers speak it."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from .app import engine_of, error_body, finish, n_tokens, sampling, sse, start
from .engine import BadRequest, Job, Result

router = APIRouter(prefix="/v1")


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    prompt: str | list[str] | list[int]
    suffix: str | None = None
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stream: bool = False
    stop: str | list[str] | None = None
    seed: int | None = None
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    prompt_lookup: int | None = None  # this server's (the openai client's extra_body)


def finish_reason(r: Result) -> str:
    return "length" if r.finish in ("length", "time") else "stop"


@router.get("/models")
async def models(request: Request):
    name = request.app.state.model_name
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "santacoder-quant"}]}


@router.post("/completions")
async def completions(request: Request, body: CompletionRequest):
    for name, bad in (("n", body.n != 1), ("best_of", body.best_of not in (None, 1)),
                      ("logprobs", body.logprobs is not None), ("echo", body.echo)):
        if bad:
            raise BadRequest(name, "is not supported by this server (one completion, no logprobs, no echo)")
    prompt = body.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        if len(prompt) != 1:
            raise BadRequest("prompt", f"takes one prompt per request (got {len(prompt)})")
        prompt = prompt[0]
    engine, n = engine_of(request), n_tokens(body.max_tokens, "max_tokens", 16)
    if body.suffix is not None:
        if not isinstance(prompt, str):
            raise BadRequest("prompt", "must be text when suffix is given")
        ids, truncated = engine.fim_prompt(prompt, body.suffix, n)
    else:
        ids, truncated = engine.text_prompt(prompt, n)
    job = Job(ids=ids, max_new_tokens=n, stop=[body.stop] if isinstance(body.stop, str) else body.stop or [],
              seed=body.seed, truncated=truncated, prompt_lookup=body.prompt_lookup,
              **sampling(body.temperature, None, body.top_p))
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": request.app.state.model_name}

    def usage(r: Result) -> dict:
        return {"prompt_tokens": r.prompt_tokens, "completion_tokens": len(r.tokens),
                "total_tokens": r.prompt_tokens + len(r.tokens)}

    if not body.stream:
        r = await finish(request, job)
        return {**head, "choices": [{"text": r.text, "index": 0, "logprobs": None,
                                     "finish_reason": finish_reason(r)}], "usage": usage(r)}

    async def chunks():
        async for event in start(request, job):
            if event[0] == "token":
                if event[2]:
                    yield {**head, "choices": [{"text": event[2], "index": 0, "logprobs": None, "finish_reason": None}]}
            elif event[0] == "end":
                yield {**head, "choices": [{"text": "", "index": 0, "logprobs": None,
                                            "finish_reason": finish_reason(event[1])}], "usage": usage(event[1])}
            else:
                yield error_body(request.url.path, 500, event[1])
        yield "data: [DONE]\n\n"
    return sse(chunks())
