"""Text Generation Inference's dialect: POST /generate, /generate_stream and / (what
`huggingface_hub.InferenceClient(url).text_generation` posts to), GET /info. llm-ls / llm.nvim /
llm-vscode send the FIM prompt already formatted in `inputs`; StarCoder's underscore FIM tokens there are
read as SantaCoder's hyphenated ones."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from .app import engine_of, error_body, finish, n_tokens, sampling, sse, start
from .engine import BadRequest, Job, Result

router = APIRouter()


class Parameters(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max_new_tokens: int | None = None
    do_sample: bool = False
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    stop: list[str] = []
    seed: int | None = None
    details: bool = False
    return_full_text: bool = False
    truncate: int | None = None
    prompt_lookup: int | None = None  # this server's


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    inputs: str
    parameters: Parameters = Parameters()
    stream: bool = False


def reason(r: Result) -> str:
    return "stop_sequence" if r.stop_word else "eos_token" if r.finish == "stop" else "length"


def make_job(request: Request, body: GenerateRequest) -> tuple[Job, str]:
    p = body.parameters
    n = n_tokens(p.max_new_tokens, "parameters.max_new_tokens", 100)
    if p.truncate is not None and p.truncate < 1:
        raise BadRequest("parameters.truncate", f"must be >= 1 (got {p.truncate})")
    ids, truncated = engine_of(request).text_prompt(body.inputs, n, truncate=p.truncate)
    # TGI samples when asked to, or when any sampling setting is given; otherwise greedy
    sample = p.do_sample or p.temperature not in (None, 1.0) or bool(p.top_k) or p.top_p not in (None, 1.0)
    temperature = (1.0 if p.temperature is None else p.temperature) if sample else 0.0
    job = Job(ids=ids, max_new_tokens=n, stop=p.stop, seed=p.seed, truncated=truncated, prompt_lookup=p.prompt_lookup,
              **sampling(temperature, p.top_k, p.top_p))
    return job, body.inputs if p.return_full_text else ""


async def generate_one(request: Request, body: GenerateRequest) -> dict:
    job, head = make_job(request, body)
    r = await finish(request, job)
    out = {"generated_text": head + r.text}
    if body.parameters.details:
        tok = engine_of(request).tok
        out["details"] = {"finish_reason": reason(r), "generated_tokens": len(r.tokens), "seed": body.parameters.seed,
                          "prefill": [], "tokens": [{"id": t, "text": tok.decode([t]), "logprob": None, "special": False}
                                                    for t in r.tokens]}
    return out


def stream_events(request: Request, body: GenerateRequest):
    job, head = make_job(request, body)
    events = start(request, job)

    async def chunks():
        held, index = None, 0  # the last token is sent with the final text and details, so hold one back
        async for event in events:
            if event[0] == "token":
                if event[1] is None:  # text held back until the end (a possible stop string)
                    held = {**held, "text": held["text"] + event[2]} if held else None
                    continue
                if held is not None:
                    yield {"index": index, "token": held, "generated_text": None, "details": None}
                    index += 1
                held = {"id": event[1], "text": event[2], "logprob": None, "special": False}
            elif event[0] == "end":
                r = event[1]
                last = held or {"id": 0, "text": "", "logprob": None, "special": True}
                yield {"index": index, "token": last, "generated_text": head + r.text,
                       "details": {"finish_reason": reason(r), "generated_tokens": len(r.tokens),
                                   "input_length": r.prompt_tokens, "seed": body.parameters.seed}}
            else:
                yield error_body(request.url.path, 500, event[1])
    return sse(chunks())


@router.post("/generate")
async def generate(request: Request, body: GenerateRequest):
    return await generate_one(request, body)


@router.post("/generate_stream")
async def generate_stream(request: Request, body: GenerateRequest):
    return stream_events(request, body)


@router.post("/")
async def compat(request: Request, body: GenerateRequest):
    if body.stream:
        return stream_events(request, body)
    return [await generate_one(request, body)]


@router.get("/info")
async def info(request: Request):
    engine = engine_of(request)
    return {"model_id": request.app.state.model_name, "model_dtype": str(engine.model.dtype).replace("torch.", ""),
            "model_device_type": engine.model.device.type, "max_input_tokens": engine.ctx - 1,
            "max_total_tokens": engine.ctx, "max_concurrent_requests": engine.queue.maxsize,
            "router": "santacoder-quant", "version": "0.1.0"}
