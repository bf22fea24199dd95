"""The completion server: one engine (server/engine.py) behind llama.cpp, OpenAI, TGI and Ollama
adapters (server/app.py and one module per dialect). Started by serve.py; needs the `serve` extra."""

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as e:
    raise ImportError(f"the server needs {e.name}: install it with pip install -e \".[serve]\" in this project's "
                      f"folder") from None

from .app import create_app
from .engine import Engine

__all__ = ["Engine", "create_app"]
