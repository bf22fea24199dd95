"""Layered application configuration.

Settings are merged from (lowest to highest priority):
  1. built-in defaults
  2. an INI file
  3. environment variables prefixed with APP_
  4. explicit overrides passed by the caller
"""
import configparser
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

ENV_PREFIX = "APP_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    pass


def parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def parse_list(value: str) -> List[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass
class DatabaseConfig:
    url: str = "sqlite:///app.db"
    pool_size: int = 5
    echo: bool = False


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool = False
    allowed_origins: List[str] = field(default_factory=list)


@dataclass
class AppConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    log_level: str = "INFO"

    def as_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"log_level": self.log_level}
        for section in ("server", "database"):
            obj = getattr(self, section)
            out[section] = {f.name: getattr(obj, f.name) for f in fields(obj)}
        return out


def _coerce(target_type: Any, raw: str, where: str) -> Any:
    try:
        if target_type is bool:
            return parse_bool(raw)
        if target_type is int:
            return int(raw)
        if target_type is float:
            return float(raw)
        if getattr(target_type, "__origin__", None) in (list, List):
            return parse_list(raw)
        return raw
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _apply(section_obj: Any, values: Mapping[str, str], where: str) -> None:
    known = {f.name: f for f in fields(section_obj)}
    for key, raw in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        setattr(section_obj, key, _coerce(known[key].type, raw, f"{where}.{key}"))


def load_config(path: Optional[Path] = None,
                environ: Optional[Mapping[str, str]] = None,
                overrides: Optional[Mapping[str, str]] = None) -> AppConfig:
    cfg = AppConfig()

    if path is not None:
        parser = configparser.ConfigParser()
        if not parser.read(path):
            raise ConfigError(f"cannot read config file {path}")
        for section in parser.sections():
            if section == "app":
                if "log_level" in parser[section]:
                    cfg.log_level = parser[section]["log_level"].upper()
                continue
            if not hasattr(cfg, section):
                raise ConfigError(f"{path}: unknown section [{section}]")
            _apply(getattr(cfg, section), dict(parser[section]), f"{path}[{section}]")

    env = os.environ if environ is None else environ
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        rest = key[len(ENV_PREFIX):].lower()
        if rest == "log_level":
            cfg.log_level = raw.upper()
            continue
        section, _, name = rest.partition("__")
        if name and hasattr(cfg, section):
            _apply(getattr(cfg, section), {name: raw}, f"env {key}")

    for dotted, raw in (overrides or {}).items():
        section, _, name = dotted.partition(".")
        if not name or not hasattr(cfg, section):
            raise ConfigError(f"bad override key {dotted!r}")
        _apply(getattr(cfg, section), {name: raw}, f"override {dotted}")

    if not (0 < cfg.server.port < 65536):
        raise ConfigError(f"port out of range: {cfg.server.port}")
    if cfg.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"bad log level {cfg.log_level}")
    return cfg


if __name__ == "__main__":
    import json
    import sys

    config_path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    try:
        config = load_config(config_path, overrides={"server.debug": "yes"})
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(config.as_dict(), indent=2))
