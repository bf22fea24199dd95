"""The completion server over real HTTP on a free loopback port, driven by the clients editors and scripts
use (the openai client, huggingface_hub's InferenceClient, raw HTTP for llama.cpp's and Ollama's routes).
Every greedy answer is checked against model.generate on the same FIM prompt."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch
import uvicorn
from huggingface_hub import InferenceClient
from openai import AuthenticationError, OpenAI

from conftest import ROOT, TINY
from modeling import SantaCoderForCausalLM
from modeling.fim import extract_middle, fim_prompt
from server import Engine, create_app

PREFIX = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return "
SUFFIX = "\n\n\ndef main():\n    print(read_lines('x'))\n"
N = 16


@pytest.fixture(scope="module")
def model():
    return SantaCoderForCausalLM.from_pretrained(TINY, dtype="fp32")  # fp32: cached and cold prefill agree exactly


def reference(model, prefix, suffix, n=N, mode="spm"):
    """The greedy middle model.generate writes for this FIM prompt."""
    ids = model.tokenizer(fim_prompt(prefix, suffix, mode), return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=n)
    return extract_middle(out[0], model.tokenizer, prefix=prefix if mode == "spm" else None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving create_app(engine) in a thread, as serve.py runs it."""

    def __init__(self, engine, **kwargs):
        self.engine, self.port = engine, free_port()
        config = uvicorn.Config(create_app(engine, "tiny-santacoder", **kwargs), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, raw=None):
        """(status, parsed JSON body) of one request; `raw` bytes are sent as they are."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        text = r.read()
        conn.close()
        return r.status, json.loads(text)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def stream(self, path, body):
        """The data lines of a server-sent-events (or NDJSON) response, parsed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("POST", path, body=json.dumps(body).encode())
        r = conn.getresponse()
        assert r.status == 200, r.read()
        lines = [ln.decode() for ln in r.read().splitlines() if ln.strip()]
        conn.close()
        return [json.loads(ln.removeprefix("data: ")) for ln in lines if ln != "data: [DONE]"]

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(model):
    s = Server(Engine(model, slots=2, max_queue=8))
    yield s
    s.close()


@pytest.fixture(scope="module")
def guarded(model):
    """A second server: PSM order, one queue place, an API key and a 2 KiB body limit."""
    s = Server(Engine(model, slots=1, max_queue=1, fim_mode="psm"), api_key="secret", max_body=2048)
    yield s
    s.close()


AUTH = {"Authorization": "Bearer secret"}


# -- each dialect gives model.generate's greedy middle --------------------------------------------------

def test_infill_raw_http(server, model):
    want = reference(model, PREFIX, SUFFIX)
    assert want.strip()
    status, r = server.post("/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": N,
                                        "temperature": 0})
    assert status == 200, r
    assert r["content"] == want
    n_prompt = len(model.tokenizer(fim_prompt(PREFIX, SUFFIX, "spm")).input_ids)
    assert r["tokens_evaluated"] == n_prompt == r["timings"]["prompt_n"] + r["timings"]["cache_n"]
    assert r["timings"]["predicted_n"] == r["tokens_predicted"] <= N
    # llama.vim sends the cursor line as `prompt`: it is the end of the prefix
    status, r = server.post("/infill", {"input_prefix": PREFIX[:-12], "prompt": PREFIX[-12:], "input_suffix": SUFFIX,
                                        "n_predict": N, "temperature": 0})
    assert status == 200 and r["content"] == want
    # streamed: the pieces add up to the same middle, the last event has stop true and the timings
    events = server.stream("/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": N,
                                       "temperature": 0, "stream": True})
    assert "".join(e["content"] for e in events) == want
    assert [e["stop"] for e in events] == [False] * (len(events) - 1) + [True]
    assert events[-1]["timings"]["predicted_n"] == r["tokens_predicted"]


def test_infill_input_extra_goes_before_the_prefix(server, model):
    extra = [{"filename": "util.py", "text": "def helper():\n    return 1"}]
    head = "# util.py\ndef helper():\n    return 1\n\n"
    want = reference(model, head + PREFIX, SUFFIX)
    status, r = server.post("/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "input_extra": extra,
                                        "n_predict": N, "temperature": 0})
    assert status == 200 and r["content"] == want


def test_openai_client(server, model):
    want = reference(model, PREFIX, SUFFIX)
    client = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["tiny-santacoder"]
    r = client.completions.create(model="tiny-santacoder", prompt=PREFIX, suffix=SUFFIX, max_tokens=N, temperature=0)
    assert r.choices[0].text == want
    assert r.usage.completion_tokens <= N and r.usage.prompt_tokens > 20
    chunks = list(client.completions.create(model="tiny-santacoder", prompt=PREFIX, suffix=SUFFIX, max_tokens=N,
                                            temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == want
    assert chunks[-1].choices[0].finish_reason == r.choices[0].finish_reason


def test_tgi_inference_client_with_starcoder_fim_tokens(server, model):
    """llm-ls sends the FIM prompt ready-made, often with StarCoder's underscore tokens: read as SantaCoder's."""
    want = reference(model, PREFIX, SUFFIX, mode="psm")
    prompt = f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    client = InferenceClient(server.url)
    assert client.text_generation(prompt, max_new_tokens=N) == want
    out = client.text_generation(prompt, max_new_tokens=N, details=True)
    assert out.generated_text == want and out.details.generated_tokens == len(out.details.tokens)
    stream = list(client.text_generation(prompt, max_new_tokens=N, stream=True, details=True))
    assert "".join(s.token.text for s in stream) == want
    assert stream[-1].generated_text == want and stream[-1].details.finish_reason in ("length", "eos_token")


def test_completion_and_ollama_raw_http(server, model):
    psm = fim_prompt(PREFIX, SUFFIX, "psm")
    status, r = server.post("/completion", {"prompt": psm, "n_predict": N, "temperature": 0})
    assert status == 200 and r["content"] == reference(model, PREFIX, SUFFIX, mode="psm")
    want = reference(model, PREFIX, SUFFIX)
    body = {"model": "tiny-santacoder", "prompt": PREFIX, "suffix": SUFFIX, "raw": True,
            "options": {"temperature": 0, "num_predict": N}}
    status, r = server.post("/api/generate", {**body, "stream": False})
    assert status == 200 and r["response"] == want and r["done"] is True
    lines = server.stream("/api/generate", body)  # Ollama streams NDJSON by default
    assert "".join(ln["response"] for ln in lines) == want and lines[-1]["done"] is True
    status, r = server.post("/api/show", {"model": "tiny-santacoder"})  # Continue sends suffix when it sees this
    assert status == 200 and ".Suffix" in r["template"] and "insert" in r["capabilities"]


def test_tgi_samples_when_a_sampling_setting_is_given(server, model):
    """As TGI does: do_sample false but a temperature given samples (seeded: reproducible)."""
    client, prompt = InferenceClient(server.url), "def read_lines(path):\n"
    greedy = client.text_generation(prompt, max_new_tokens=N)
    hot = [client.text_generation(prompt, max_new_tokens=N, temperature=1.5, seed=s) for s in (1, 1, 2)]
    assert hot[0] == hot[1] != greedy and hot[2] != hot[0]


def test_stop_string_cuts_exactly(server, model):
    """A stop string ends the completion where it starts, in the text, the stream and stopping_word."""
    tok, prompt = model.tokenizer, "import os\nimport sys\n"
    x = tok(prompt, return_tensors="pt").input_ids
    free = tok.decode(model.generate(x, max_new_tokens=40, eos_token_id=[])[0, x.shape[1]:])
    stop = free[free.index("\n") + 1:][:3]  # three characters from inside the text, past its first line
    body = {"prompt": prompt, "n_predict": 40, "temperature": 0, "stop": [stop, "never written"], "ignore_eos": True}
    status, r = server.post("/completion", body)
    assert status == 200 and r["content"] == free[:free.index(stop)]
    assert r["stop_type"] == "word" and r["stopping_word"] == stop
    events = server.stream("/completion", {**body, "stream": True})
    assert "".join(e["content"] for e in events) == r["content"] and events[-1]["stopping_word"] == stop


def test_ollama_empty_prompt_loads(server):
    status, r = server.post("/api/generate", {"model": "tiny-santacoder"})
    assert status == 200 and r["done"] is True and r["done_reason"] == "load" and r["response"] == ""


def test_psm_order_server(guarded, model):
    status, r = guarded.post("/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": N,
                                         "temperature": 0}, headers=AUTH)
    assert status == 200 and r["content"] == reference(model, PREFIX, SUFFIX, mode="psm")


# -- prompt cache ---------------------------------------------------------------------------------------

def test_typing_at_the_cursor_reuses_the_prompt_cache(server, model):
    tok = model.tokenizer
    first = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": N, "temperature": 0}
    status, r1 = server.post("/infill", first)
    assert status == 200
    typed = PREFIX + "f.read().split"  # the user typed on at the cursor
    second = {**first, "input_prefix": typed}
    status, warm = server.post("/infill", second)
    assert status == 200
    old = tok(fim_prompt(PREFIX, SUFFIX, "spm")).input_ids
    new = tok(fim_prompt(typed, SUFFIX, "spm")).input_ids
    shared = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
    assert warm["timings"]["cache_n"] >= shared > len(new) - 10  # SPM: only the typed tokens are evaluated
    assert warm["timings"]["prompt_n"] == len(new) - warm["timings"]["cache_n"]
    # the slot holds the prompt and every token fed back: all but the last one when the length ran out
    assert warm["tokens_cached"] == len(new) + warm["tokens_predicted"] - (warm["stop_type"] == "limit")
    status, cold = server.post("/infill", {**second, "cache_prompt": False})
    assert cold["timings"]["cache_n"] == 0 and cold["timings"]["prompt_n"] == len(new)
    assert warm["content"] == cold["content"] == reference(model, typed, SUFFIX)


def test_prompt_cache_keeps_several_slots(model):
    """Two files edited in turn keep a slot each: every FIM prompt starts with the same two tokens, and
    that short match must not evict the other file's cache."""
    s = Server(Engine(model, slots=2))
    try:
        a = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 4, "temperature": 0}
        b = {"input_prefix": "class Point:\n    def __init__(self, x, y):\n        ", "input_suffix": "\n",
             "n_predict": 4, "temperature": 0}
        for body in (a, b):
            assert s.post("/infill", body)[1]["timings"]["cache_n"] == 0
        for body in (a, b, a, b):
            status, r = s.post("/infill", body)
            assert status == 200 and r["timings"]["prompt_n"] == 1  # all but the last prompt token came from a slot
    finally:
        s.close()


# -- prompt lookup ----------------------------------------------------------------------------------------

COPY = ('"""In-process publish/subscribe event bus supporting sync and async handlers."""\nimport asyncio\n'
        "import fnmatch\nimport inspect\nimport logging\n") * 2  # the fixture copies on from here


def lookup_ran(model, request):
    """(answer, whether a prompt-lookup generation ran for it and kept drafted tokens)."""
    before = getattr(model, "lookup_stats", None)
    status, r = request()
    stats = getattr(model, "lookup_stats", None)
    assert status == 200, r
    return r, stats is not before and stats.accepted > 0


def test_prompt_lookup_per_request_and_as_the_server_default(server, model):
    body = {"prompt": COPY, "n_predict": 24, "temperature": 0}
    plain, ran = lookup_ran(model, lambda: server.post("/completion", body))
    assert not ran
    for route, request in (("/completion", {**body, "prompt_lookup": 3}),
                           ("/v1/completions", {"prompt": COPY, "max_tokens": 24, "temperature": 0, "prompt_lookup": 3}),
                           ("/generate", {"inputs": COPY, "parameters": {"max_new_tokens": 24, "prompt_lookup": 3}}),
                           ("/api/generate", {"prompt": COPY, "raw": True, "stream": False,
                                              "options": {"num_predict": 24, "temperature": 0, "prompt_lookup": 3}})):
        r, ran = lookup_ran(model, lambda: server.post(route, request))
        text = r.get("content", r.get("generated_text", r.get("response"))) if "choices" not in r else r["choices"][0]["text"]
        assert ran and text == plain["content"], route
    s = Server(Engine(model, slots=1, prompt_lookup=3))
    try:
        r, ran = lookup_ran(model, lambda: s.post("/completion", body))
        assert ran and r["content"] == plain["content"]
        r, ran = lookup_ran(model, lambda: s.post("/completion", {**body, "prompt_lookup": 0}))
        assert not ran and r["content"] == plain["content"]
        # typing on: the prompt cache still holds the right keys and values after drafts were rolled back
        first = {"input_prefix": COPY, "input_suffix": SUFFIX, "n_predict": N, "temperature": 0}
        warm1 = s.post("/infill", first)[1]
        warm2 = s.post("/infill", {**first, "input_prefix": COPY + "import"})[1]
        cold = s.post("/infill", {**first, "input_prefix": COPY + "import", "cache_prompt": False})[1]
        assert warm2["timings"]["cache_n"] > 0 and warm2["content"] == cold["content"]
        assert warm1["content"] == reference(model, COPY, SUFFIX) and cold["content"] == reference(model, COPY + "import", SUFFIX)
    finally:
        s.close()


# -- the engine is freed, bounded and guarded ---------------------------------------------------------------

def wait_for(cond, timeout=20):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("stream", [True, False])
def test_disconnected_client_frees_the_engine(server, stream):
    long = {"prompt": "def f(x):\n", "n_predict": 400, "ignore_eos": True, "temperature": 0, "stream": stream}
    history = server.engine.history  # the last 32 results: watch for a new last one, not for its length
    before = history[-1] if history else None
    sock = socket.create_connection(("127.0.0.1", server.port))
    body = json.dumps(long).encode()
    sock.sendall(b"POST /completion HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    wait_for(lambda: server.engine.lock.locked())  # generating
    if stream:  # read until the first token arrives
        got = b""
        while b"data: " not in got:
            got += sock.recv(4096)
    sock.close()
    wait_for(lambda: history and history[-1] is not before)
    r = server.engine.history[-1]
    assert r.finish == "cancelled" and len(r.tokens) < 400
    status, r = server.post("/infill", {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 4})
    assert status == 200


def test_full_queue_answers_503(guarded):
    engine, results = guarded.engine, {}

    def send(name):
        results[name] = guarded.post("/completion", {"prompt": "x = ", "n_predict": 2}, headers=AUTH)

    with engine.lock:  # the engine is busy: the first request is taken and waits, the second fills the queue
        threads = [threading.Thread(target=send, args=(name,)) for name in ("a", "b")]
        taken = engine.taken
        threads[0].start()
        wait_for(lambda: engine.taken == taken + 1)  # "a" is off the queue, its worker waits for the lock
        threads[1].start()
        wait_for(lambda: engine.queue.qsize() == 1)
        status, r = guarded.post("/completion", {"prompt": "x = ", "n_predict": 2}, headers=AUTH)
        assert status == 503 and "--max-queue" in r["error"]["message"]
        status, r = guarded.post("/v1/completions", {"prompt": "x = ", "max_tokens": 2}, headers=AUTH)
        assert status == 503 and r["error"]["code"] == 503  # in the OpenAI shape
    for t in threads:
        t.join(30)
    assert results["a"][0] == results["b"][0] == 200


def test_api_key(guarded):
    body = {"prompt": "x = ", "n_predict": 2}
    assert guarded.request("GET", "/health")[0] == 200  # open, for load balancers and editors probing
    status, r = guarded.post("/completion", body)
    assert status == 401 and "API key" in r["error"]["message"]
    assert guarded.post("/completion", body, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert guarded.request("GET", "/v1/models")[0] == 401
    assert guarded.post("/completion", body, headers=AUTH)[0] == 200
    assert guarded.post("/completion", body, headers={"X-Api-Key": "secret"})[0] == 200
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=guarded.url + "/v1", api_key="wrong", max_retries=0).completions.create(
            model="m", prompt="x", max_tokens=2)
    r = OpenAI(base_url=guarded.url + "/v1", api_key="secret", max_retries=0).completions.create(
        model="m", prompt="x = ", max_tokens=2, temperature=0)
    assert r.usage.completion_tokens >= 1


def test_body_limit(guarded):
    status, r = guarded.post("/completion", {"prompt": "x" * 3000, "n_predict": 2}, headers=AUTH)
    assert status == 413 and "--max-body" in r["error"]["message"]
    assert guarded.post("/completion", {"prompt": "x = ", "n_predict": 2}, headers=AUTH)[0] == 200


BAD = [  # (route, body, words the one-line error must contain)
    ("/infill", b"{bad", "not valid JSON"),
    ("/infill", b"[1, 2]", "JSON object"),
    ("/infill", {"n_predict": -1}, "n_predict"),
    ("/infill", {"n_predict": "many"}, "n_predict"),
    ("/infill", {"top_p": 3}, "top_p"),
    ("/infill", {"temperature": -1}, "temperature"),
    ("/infill", {"top_k": -5}, "top_k"),
    ("/infill", {"input_prefix": 5}, "input_prefix"),
    ("/infill", {"input_extra": "not a list"}, "input_extra"),
    ("/infill", {"stop": [""]}, "stop"),
    ("/completion", {}, "prompt"),
    ("/completion", {"prompt": ""}, "prompt"),
    ("/completion", {"prompt": [10 ** 9]}, "prompt"),
    ("/completion", {"prompt": "x" * 1500, "n_predict": 4}, "context of 512 tokens"),
    ("/v1/completions", {"prompt": "x", "n": 2}, "n is not supported"),
    ("/v1/completions", {"prompt": "x", "max_tokens": -5}, "max_tokens"),
    ("/v1/completions", {"prompt": "x", "stop": 5}, "stop"),
    ("/v1/completions", {"prompt": "x", "temperature": "hot"}, "temperature"),
    ("/generate", {"inputs": "x", "parameters": {"top_p": 0}}, "top_p"),
    ("/generate", {"inputs": "x", "parameters": {"truncate": 0}}, "truncate"),
    ("/generate", {"parameters": {}}, "inputs"),
    ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 600, "truncate": 10}}, "context of 512 tokens"),
    ("/completion", {"prompt": "x", "seed": 2 ** 64}, "seed"),
    ("/v1/completions", {"prompt": "x", "seed": -3}, "seed"),
    ("/infill", b'{"input_extra": [{"filename": "a.py", "text": "\\ud800"}]}', "input_extra.text"),
    ("/infill", b'{"input_prefix": "\\udfff"}', "input_prefix"),
    ("/api/generate", {"prompt": "x", "options": {"num_predict": -2}}, "num_predict"),
    ("/infill", {"prompt_lookup": -1}, "prompt_lookup must be an integer in [0, 64]"),
    ("/v1/completions", {"prompt": "x", "prompt_lookup": 65}, "prompt_lookup must be an integer in [0, 64]"),
]


@pytest.mark.parametrize("route,body,words", BAD, ids=[f"{r}-{w}" for r, _, w in BAD])
def test_bad_input_is_a_one_line_400_and_the_server_goes_on(server, route, body, words):
    raw = body if isinstance(body, bytes) else None
    status, r = server.post(route, None if raw else body, raw=raw)
    assert status == 400, r
    message = r["error"] if isinstance(r["error"], str) else r["error"]["message"]
    assert words in message and "\n" not in message
    assert server.post("/completion", {"prompt": "x = ", "n_predict": 1})[0] == 200


def test_long_prompts_truncate_only_when_asked(server, model):
    long = "y = 1\n" * 400  # 800 tokens: more than the context of 512
    status, r = server.post("/generate", {"inputs": long, "parameters": {"max_new_tokens": 4, "truncate": 100}})
    assert status == 200
    status, r = server.post("/infill", {"input_prefix": long, "input_suffix": long, "n_predict": 8})
    assert status == 200 and r["truncated"] is True and r["tokens_evaluated"] <= 512 - 8
    status, r = server.post("/v1/completions", {"prompt": long, "max_tokens": 4})
    assert status == 400 and "context of 512 tokens" in r["error"]["message"]


def test_t_max_predict_ms_stops_after_a_newline(server):
    body = {"prompt": "def f(x):\n", "n_predict": 300, "ignore_eos": True, "temperature": 0, "stream": True}
    full = server.stream("/completion", body)
    cut = server.stream("/completion", {**body, "t_max_predict_ms": 1})
    pieces = [e["content"] for e in cut[:-1]]
    first_newline = next(i for i, p in enumerate(pieces) if "\n" in p)
    assert first_newline == len(pieces) - 1  # it stopped at the first newline once the time was up
    assert pieces == [e["content"] for e in full[:len(pieces)]] and full[-1]["tokens_predicted"] == 300
    assert cut[-1]["stop_type"] == "limit"


# -- serve.py ---------------------------------------------------------------------------------------------

def serve(*args, **kwargs):
    return subprocess.run([sys.executable, os.path.join(ROOT, "serve.py"), *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_serve_cli_refuses_bad_flags_before_loading():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, words in ((["--port", "0"], "--port must be >= 1"), (["--fim-mode", "mps"], "invalid choice"),
                            (["--api-key", " "], "--api-key is empty"),
                            (["--prompt-lookup", "-2"], "--prompt-lookup must lie in [0, 64]"),
                            (["--port", str(port)], f"--port {port}: Address already in use")):
            p = serve(TINY, *args)
            assert p.returncode == 2 and words in p.stderr, (args, p.stderr)
            assert p.stderr.count("\n") == 1, p.stderr  # one line, no usage block
    p = serve(os.path.join(ROOT, "no-such-model"))
    assert p.returncode == 2 and "no-such-model" in p.stderr.strip().splitlines()[-1]


def test_serve_cli_end_to_end(model):
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), TINY, "--port", str(port), "--dtype",
                             "fp32", "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "slow"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = {"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": N, "temperature": 0}
        conn.request("POST", "/infill", body=json.dumps(body))
        r = json.loads(conn.getresponse().read())
        assert r["content"] == reference(model, PREFIX, SUFFIX)
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    assert "Traceback" not in out
