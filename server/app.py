"""The HTTP app: one engine behind four protocol adapters (llama.cpp, OpenAI, TGI, Ollama).

What every route shares lives here: the API-key and body-size guard, one-line JSON errors in each
dialect's own shape (never a 500 for bad input, never a dead server), and running a job to the end or
as a stream while watching for the client going away.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from modeling.generation import GenerationArgumentError

from .engine import BadRequest, Busy, Engine, Job

log = logging.getLogger("server")


def error_body(path: str, status: int, message: str) -> dict:
    """An error in the shape the route's clients parse."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
            413: "invalid_request_error", 503: "unavailable_error"}.get(status, "server_error")
    if path.startswith("/v1/"):  # OpenAI
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}
    if path.startswith("/api/"):  # Ollama
        return {"error": message}
    if path in ("/", "/generate", "/generate_stream", "/info"):  # TGI
        return {"error": message, "error_type": {400: "validation", 503: "overloaded"}.get(status, kind)}
    return {"error": {"code": status, "message": message, "type": kind}}  # llama.cpp


def error_response(path: str, status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(path, status, message.splitlines()[0] if message else ""), status_code=status)


class Guard:
    """ASGI middleware: the API key on every route but /health, a cap on the request body, and every body
    read as JSON."""

    def __init__(self, app, api_key: str | None, max_body: int):
        self.app, self.api_key, self.max_body = app, api_key, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, headers = scope["path"], dict(scope["headers"])
        if self.api_key and path != "/health":
            auth = headers.get(b"authorization", b"").decode("latin-1")
            given = auth[7:] if auth.lower().startswith("bearer ") else headers.get(b"x-api-key", b"").decode("latin-1")
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return await error_response(path, 401, "invalid or missing API key: send the header "
                                                       "'Authorization: Bearer KEY'")(scope, receive, send)
        body, more = b"", True
        while more:  # read the whole body here (capped), then hand it on
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await error_response(path, 413, f"request body over {self.max_body} bytes "
                                                       f"(--max-body)")(scope, receive, send)
        # Bodies are JSON whatever the Content-Type (as llama.cpp reads them: `curl -d` says form-urlencoded).
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"] + [(b"content-type", b"application/json")]
        scope = dict(scope, headers=headers)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(engine: Engine, model_name: str, api_key: str | None = None, max_body: int = 4 << 20) -> FastAPI:
    from . import llamacpp, ollama, openai_compat, tgi

    app = FastAPI(title="santacoder-quant completion server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine, app.state.model_name = engine, model_name

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        if e.get("type") == "json_invalid":
            return error_response(request.url.path, 400, f"request body is not valid JSON: {e.get('msg', '')}")
        if not where:
            return error_response(request.url.path, 400, "request body must be a JSON object")
        return error_response(request.url.path, 400, f"{where}: {e.get('msg', 'invalid')}")

    @app.exception_handler(BadRequest)
    @app.exception_handler(GenerationArgumentError)
    async def bad(request: Request, exc: ValueError):
        return error_response(request.url.path, 400, str(exc))

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        return error_response(request.url.path, 503, str(exc))

    @app.exception_handler(ClientGone)
    async def gone(request: Request, exc: ClientGone):
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error_response(request.url.path, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("request failed")
        return error_response(request.url.path, 500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    for module in (llamacpp, openai_compat, tgi, ollama):
        app.include_router(module.router)
    app.add_middleware(Guard, api_key=api_key, max_body=max_body)
    return app


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


class ClientGone(Exception):
    """The client closed the connection before its answer was ready (nothing is sent back)."""


async def finish(request: Request, job: Job):
    """Run a job to its end and return the engine's Result; a client that goes away cancels it (checked
    every quarter second, tokens arriving or not)."""
    engine_of(request).submit(job)
    loop = asyncio.get_running_loop()
    next_check = loop.time() + 0.25
    while True:
        try:
            event = await asyncio.wait_for(job.events.get(), 0.25)
        except asyncio.TimeoutError:
            event = ("wait",)
        if event[0] == "end":
            return event[1]
        if event[0] == "error":
            raise RuntimeError(event[1])
        if loop.time() >= next_check:
            next_check = loop.time() + 0.25
            if await request.is_disconnected():
                job.cancelled.set()
                raise ClientGone


def start(request: Request, job: Job):
    """Queue a job (400 / 503 raised now, before the response starts) and return its event stream:
    ("token", id, text)..., then ("end", Result) or ("error", message). Closing it cancels the job."""
    engine_of(request).submit(job)

    async def events():
        try:
            while True:
                event = await job.events.get()
                yield event
                if event[0] != "token":
                    return
        finally:
            job.cancelled.set()  # the client went away (or the job is over: then it changes nothing)

    return events()


def sse(chunks, media_type="text/event-stream") -> StreamingResponse:
    """Server-sent events from an async iterator of dicts (or ready strings)."""
    async def body():
        async for c in chunks:
            yield c if isinstance(c, str) else f"data: {json.dumps(c)}\n\n"
    return StreamingResponse(body(), media_type=media_type, headers={"Cache-Control": "no-cache"})


def sampling(temperature, top_k, top_p) -> dict:
    """Dialect sampling values in the engine's terms: top_k 0 and top_p 1 are off; temperature 0 is greedy."""
    return {"temperature": temperature, "top_k": top_k or None, "top_p": None if top_p == 1 else top_p}


def n_tokens(value, name: str, default: int) -> int:
    if value is None:
        return default
    if value < 0:
        raise BadRequest(name, f"must be >= 0 (got {value}); give a number of tokens")
    return value
