"""llama.cpp's server dialect: POST /infill (llama.vim, llama.vscode, Tabby, Continue, llm-ls) and
POST /completion. Unknown fields are ignored, as llama.cpp does; known fields are type-checked.

/infill's prompt is input_extra (other files), then input_prefix + prompt (the text before the cursor:
llama.vim sends the current line up to the cursor as `prompt`), then input_suffix, in the engine's FIM
order (server/engine.py); the answer is the middle.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from .app import engine_of, error_body, finish, n_tokens, sampling, sse, start
from .engine import Job, Result

router = APIRouter()
DEFAULT_N_PREDICT = 128


class Extra(BaseModel):
    model_config = ConfigDict(extra="ignore")
    filename: str = ""
    text: str = ""


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")
    n_predict: int | None = None
    temperature: float = 0.8  # llama.cpp's defaults
    top_k: int = 40
    top_p: float = 0.95
    stop: list[str] = []
    seed: int | None = None
    t_max_predict_ms: float | None = None
    cache_prompt: bool = True
    ignore_eos: bool = False
    prompt_lookup: int | None = None  # this server's: prompt-lookup draft length (None = serve.py --prompt-lookup)
    stream: bool = False


class Infill(Params):
    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[Extra] = []
    prompt: str = ""


class Completion(Params):
    prompt: str | list[int]


def job_for(params: Params, ids: list, truncated: bool, n: int) -> Job:
    return Job(ids=ids, max_new_tokens=n, stop=params.stop, truncated=truncated,
               seed=params.seed if params.seed is not None and params.seed >= 0 else None,
               t_max_predict_ms=params.t_max_predict_ms if params.t_max_predict_ms and params.t_max_predict_ms > 0 else None,
               cache_prompt=params.cache_prompt, ignore_eos=params.ignore_eos, prompt_lookup=params.prompt_lookup,
               **sampling(params.temperature, params.top_k, params.top_p))


def final(request: Request, r: Result, content: str) -> dict:
    stop_type = {"stop": "word" if r.stop_word else "eos", "length": "limit", "time": "limit"}.get(r.finish, "none")
    return {
        "content": content, "stop": True, "id_slot": 0, "model": request.app.state.model_name,
        "tokens_predicted": len(r.tokens), "tokens_evaluated": r.prompt_tokens, "truncated": r.truncated,
        "stop_type": stop_type, "stopping_word": r.stop_word, "tokens_cached": r.kept,
        "timings": {
            "cache_n": r.cached, "prompt_n": r.prompt_n, "prompt_ms": r.prompt_ms,
            "prompt_per_second": r.prompt_n / r.prompt_ms * 1e3 if r.prompt_ms else 0.0,
            "predicted_n": len(r.tokens), "predicted_ms": r.predicted_ms,
            "predicted_per_second": len(r.tokens) / r.predicted_ms * 1e3 if r.predicted_ms else 0.0,
        },
    }


async def answer(request: Request, params: Params, job: Job):
    if not params.stream:
        r = await finish(request, job)
        return final(request, r, r.text)

    async def chunks():
        async for event in start(request, job):
            if event[0] == "token":
                if event[2]:
                    yield {"content": event[2], "stop": False, "id_slot": 0}
            elif event[0] == "end":
                yield final(request, event[1], "")
            else:
                yield error_body(request.url.path, 500, event[1])
    return sse(chunks())


@router.post("/infill")
async def infill(request: Request, body: Infill):
    n = n_tokens(body.n_predict, "n_predict", DEFAULT_N_PREDICT)
    extra = [(e.filename, e.text) for e in body.input_extra]
    ids, truncated = engine_of(request).fim_prompt(body.input_prefix + body.prompt, body.input_suffix, n, extra)
    return await answer(request, body, job_for(body, ids, truncated, n))


@router.post("/completion")
@router.post("/completions")
async def completion(request: Request, body: Completion):
    n = n_tokens(body.n_predict, "n_predict", DEFAULT_N_PREDICT)
    ids, truncated = engine_of(request).text_prompt(body.prompt, n)
    return await answer(request, body, job_for(body, ids, truncated, n))
