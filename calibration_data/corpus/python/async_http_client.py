"""A small retrying HTTP client wrapper built on asyncio streams.

Only plain HTTP/1.1 GET and POST are supported; it's meant for talking to
internal services in tests where pulling in a full client library is overkill.
"""
import asyncio
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Dict, Optional
from urllib.parse import urlsplit

log = logging.getLogger("httpwrap")


class HttpError(Exception):
    def __init__(self, status: int, reason: str, body: bytes = b""):
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


@dataclass
class Response:
    status: int
    reason: str
    headers: Dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    retry_statuses: frozenset = field(default_factory=lambda: frozenset({502, 503, 504}))

    def delay_for(self, attempt: int) -> float:
        backoff = min(self.max_delay, self.base_delay * (2 ** attempt))
        return backoff * (0.5 + random.random() / 2)


async def _read_response(reader: asyncio.StreamReader) -> Response:
    status_line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
    try:
        _version, status, reason = status_line.split(" ", 2)
    except ValueError:
        raise HttpError(0, f"malformed status line: {status_line!r}")
    headers: Dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return Response(int(status), reason, headers, body)


class HttpClient:
    def __init__(self, base_url: str, timeout: float = 10.0,
                 retry: Optional[RetryPolicy] = None,
                 default_headers: Optional[Dict[str, str]] = None):
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError("only http:// URLs are supported")
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.default_headers = {"User-Agent": "httpwrap/0.3", **(default_headers or {})}

    async def _send_once(self, method: str, path: str, body: bytes,
                         headers: Dict[str, str]) -> Response:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout=self.timeout
        )
        try:
            all_headers = {
                **self.default_headers,
                "Host": f"{self.host}:{self.port}",
                "Content-Length": str(len(body)),
                "Connection": "close",
                **headers,
            }
            head = f"{method} {self.prefix}{path} HTTP/1.1\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in all_headers.items())
            writer.write(head.encode("latin-1") + b"\r\n" + body)
            await writer.drain()
            return await asyncio.wait_for(_read_response(reader), timeout=self.timeout)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def request(self, method: str, path: str, *, body: bytes = b"",
                      headers: Optional[Dict[str, str]] = None) -> Response:
        last_exc: Optional[BaseException] = None
        for attempt in range(self.retry.attempts):
            try:
                resp = await self._send_once(method, path, body, headers or {})
            except (OSError, asyncio.TimeoutError) as exc:
                last_exc = exc
                log.warning("%s %s failed (%s), attempt %d", method, path, exc, attempt + 1)
            else:
                if resp.status not in self.retry.retry_statuses:
                    if not resp.ok:
                        raise HttpError(resp.status, resp.reason, resp.body)
                    return resp
                last_exc = HttpError(resp.status, resp.reason, resp.body)
                log.info("retryable status %d for %s", resp.status, path)
            if attempt + 1 < self.retry.attempts:
                await asyncio.sleep(self.retry.delay_for(attempt))
        assert last_exc is not None
        raise last_exc

    async def get_json(self, path: str):
        resp = await self.request("GET", path, headers={"Accept": "application/json"})
        return resp.json()

    async def post_json(self, path: str, payload) -> Response:
        data = json.dumps(payload).encode("utf-8")
        return await self.request(
            "POST", path, body=data, headers={"Content-Type": "application/json"}
        )


async def fetch_many(client: HttpClient, paths, concurrency: int = 4):
    sem = asyncio.Semaphore(concurrency)

    async def one(p):
        async with sem:
            try:
                return p, await client.get_json(p)
            except (HttpError, OSError, asyncio.TimeoutError) as exc:
                return p, exc

    return dict(await asyncio.gather(*(one(p) for p in paths)))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    c = HttpClient("http://127.0.0.1:8080/api", timeout=2.0,
                   retry=RetryPolicy(attempts=2, base_delay=0.1))
    results = asyncio.run(fetch_many(c, ["/health", "/users/1", "/users/2"]))
    for path, outcome in results.items():
        print(path, "->", outcome)
