"""A minimal WSGI application with a decorator-based router.

Run with:  python tiny_wsgi_app.py  and open http://localhost:8051/notes
"""
import json
import re
from http import HTTPStatus
from itertools import count
from typing import Callable, Dict, List, Tuple
from wsgiref.simple_server import make_server


class Request:
    def __init__(self, environ):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.query = environ.get("QUERY_STRING", "")
        self._body = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            try:
                length = int(self.environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            self._body = self.environ["wsgi.input"].read(length) if length else b""
        return self._body

    def json(self):
        if not self.body:
            return None
        return json.loads(self.body)


class HTTPError(Exception):
    def __init__(self, status: HTTPStatus, message: str = ""):
        super().__init__(message or status.phrase)
        self.status = status
        self.message = message or status.phrase


Handler = Callable[..., Tuple[int, object]]


class App:
    def __init__(self):
        self.routes: List[Tuple[str, "re.Pattern[str]", Handler]] = []

    def route(self, pattern: str, methods=("GET",)):
        # convert "/notes/<int:id>" into a regex with named groups
        def to_regex(p: str) -> str:
            def repl(m: "re.Match[str]") -> str:
                kind, name = m.group(1), m.group(2)
                body = r"\d+" if kind == "int" else r"[^/]+"
                return f"(?P<{name}>{body})"

            return "^" + re.sub(r"<(?:(int):)?(\w+)>", repl, p) + "$"

        compiled = re.compile(to_regex(pattern))

        def decorator(func: Handler) -> Handler:
            for m in methods:
                self.routes.append((m.upper(), compiled, func))
            return func

        return decorator

    def dispatch(self, request: Request):
        allowed = set()
        for method, regex, handler in self.routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.add(method)
                continue
            params = {k: int(v) if v.isdigit() else v for k, v in match.groupdict().items()}
            return handler(request, **params)
        if allowed:
            raise HTTPError(HTTPStatus.METHOD_NOT_ALLOWED)
        raise HTTPError(HTTPStatus.NOT_FOUND)

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            status, payload = self.dispatch(request)
        except HTTPError as err:
            status, payload = err.status, {"error": err.message}
        except json.JSONDecodeError:
            status, payload = HTTPStatus.BAD_REQUEST, {"error": "invalid JSON"}
        except Exception:  # pragma: no cover - last resort
            status, payload = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
        status = HTTPStatus(status)
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status.value} {status.phrase}", headers)
        return [body]


app = App()
_notes: Dict[int, dict] = {}
_ids = count(1)


@app.route("/notes")
def list_notes(request):
    return 200, sorted(_notes.values(), key=lambda n: n["id"])


@app.route("/notes", methods=("POST",))
def create_note(request):
    data = request.json() or {}
    text = str(data.get("text", "")).strip()
    if not text:
        raise HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY, "text is required")
    note = {"id": next(_ids), "text": text, "done": False}
    _notes[note["id"]] = note
    return 201, note


@app.route("/notes/<int:note_id>")
def get_note(request, note_id):
    if note_id not in _notes:
        raise HTTPError(HTTPStatus.NOT_FOUND, f"note {note_id} not found")
    return 200, _notes[note_id]


@app.route("/notes/<int:note_id>", methods=("PATCH",))
def update_note(request, note_id):
    note = get_note(request, note_id)[1]
    changes = request.json() or {}
    for key in ("text", "done"):
        if key in changes:
            note[key] = changes[key]
    return 200, note


@app.route("/notes/<int:note_id>", methods=("DELETE",))
def delete_note(request, note_id):
    if _notes.pop(note_id, None) is None:
        raise HTTPError(HTTPStatus.NOT_FOUND)
    return 204, None


if __name__ == "__main__":
    with make_server("", 8051, app) as server:
        print("serving on http://localhost:8051")
        server.serve_forever()
