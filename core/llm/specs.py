"""Model spec strings: one text names a backend and its options, for the CLI, the TUI and jobs."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from core.errors import OptionError
from core.llm.base import ChatBackend

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
ServerResolver = Callable[[str], "tuple[str, str]"]


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """A parsed model spec."""

    kind: str  # openai | hf | vllm
    target: str  # model name, model path, or managed-server id
    base_url: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def model_label(self) -> str:
        """The model name used in cache keys, accounting and the store (never a key or URL)."""
        return self.target


def parse_spec(spec: str) -> BackendSpec:
    """Parse a model spec (syntax in `make_backend`); raise OptionError naming what is wrong."""
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("openai", "hf", "vllm") or not rest:
        raise OptionError(
            f"model spec {spec!r}: expected openai:MODEL[@URL], hf:PATH or vllm:SERVER_ID "
            "(options after '?', e.g. ?concurrency=64)"
        )
    if kind == "hf":
        # Paths may contain '?' only if the user escapes them; options come after the last '?'.
        path, _, query = rest.rpartition("?") if "?" in rest else (rest, "", "")
        return BackendSpec("hf", path, options=_options(query, spec))
    body, _, query = rest.partition("?")
    if kind == "vllm":
        return BackendSpec("vllm", body, options=_options(query, spec))
    model, base_url = body, DEFAULT_OPENAI_URL
    for scheme in ("@http://", "@https://"):
        if scheme in body:
            model, _, url = body.rpartition(scheme)
            base_url = scheme[1:] + url
    if base_url == DEFAULT_OPENAI_URL and "@" in body:
        raise OptionError(f"model spec {spec!r}: after '@' comes the server's URL, starting with http:// or https:// "
                          "(openai:MODEL@http://HOST:PORT/v1)")
    if not model.strip():
        raise OptionError(f"model spec {spec!r}: the model name is empty (openai:MODEL[@URL])")
    if any(char.isspace() for char in model):
        raise OptionError(f"model spec {spec!r}: the model name holds white space")
    _check_url(base_url, spec)
    if base_url == DEFAULT_OPENAI_URL:
        return BackendSpec("openai", model, base_url=base_url, options=_options(query, spec))
    # With an explicit URL, parameters that are not ours belong to the URL (`?api-version=...`).
    pairs = parse_qsl(query, keep_blank_values=True) if query else []
    for name, _value in pairs:
        if name not in _KNOWN_OPTIONS:
            _refuse_near_miss(name, spec)
    url_query = urlencode([(name, value) for name, value in pairs if name not in _KNOWN_OPTIONS])
    options = {name: value for name, value in pairs if name in _KNOWN_OPTIONS}
    return BackendSpec("openai", model, base_url=base_url + (f"?{url_query}" if url_query else ""), options=options)


def _check_url(url: str, spec: str) -> None:
    """Raise OptionError unless `url` names a host and a valid port over http or https."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(f"model spec {spec!r}: {url!r} is not an http(s) URL with a host")
    try:
        port = parts.port
    except ValueError:
        raise OptionError(f"model spec {spec!r}: the port in {url!r} is not a number from 1 to 65535") from None
    if port == 0:
        raise OptionError(f"model spec {spec!r}: port 0 is not a port a server listens on")


def check_spec(spec: str, env: Mapping[str, str] | None = None) -> BackendSpec:
    """Parse a model spec and check what can be known before any data loads or request is sent.

    On top of `parse_spec`: the options' values, the API key (`?key_env=VAR` must name a set
    variable; the hosted default URL needs a key; a key must be one line), and for `hf:PATH` that
    PATH is a local folder or .gguf file (hub downloads are unavailable). Raises OptionError.
    """
    environ = os.environ if env is None else env
    parsed = parse_spec(spec)
    options = parsed.options
    for name in ("concurrency", "retries", "batch_size", "max_tokens"):
        if name in options and _int_option(options, name, 1, spec) < 0:
            raise OptionError(f"model spec {spec!r}: {name} must not be negative")
    for name in ("timeout", "connect_timeout"):
        if name not in options:
            continue
        try:
            seconds = float(options[name])
        except ValueError:
            raise OptionError(f"model spec {spec!r}: {name} must be a number of seconds") from None
        if not 0 < seconds < float("inf"):
            raise OptionError(f"model spec {spec!r}: {name} must be a positive number of seconds")
    if parsed.kind == "hf":
        from core.localmodels import require_local_model

        require_local_model(parsed.target, what=f"model spec {spec!r}", files=(".gguf",))
    elif parsed.kind == "vllm":
        if not parsed.target.isdigit():
            raise OptionError(f"model spec {spec!r}: vllm:SERVER_ID takes the id `workbench llm list` shows")
    else:
        key_env = options.get("key_env", "OPENAI_API_KEY")
        if "key_env" in options and not key_env:
            raise OptionError(f"model spec {spec!r}: key_env is empty; name the variable holding the API key")
        key = environ.get(key_env, "")
        if "key_env" in options and not key:
            raise OptionError(f"model spec {spec!r}: ${key_env} (named by key_env) is not set")
        if not key and parsed.base_url == DEFAULT_OPENAI_URL:
            raise OptionError(
                f"model spec {spec!r}: the hosted OpenAI API needs a key: set ${key_env}, "
                "or name a server: openai:MODEL@http://HOST:PORT/v1"
            )
        if any(char in key for char in "\r\n\x00"):
            raise OptionError(f"model spec {spec!r}: the API key in ${key_env} holds a line break or NUL")
    return parsed


def _refuse_near_miss(name: str, spec: str) -> None:
    close = difflib.get_close_matches(name, sorted(_KNOWN_OPTIONS), n=1, cutoff=0.75)
    if close:
        raise OptionError(f"model spec {spec!r}: unknown option {name!r}; did you mean {close[0]!r}?")


_KNOWN_OPTIONS = {
    "key_env", "concurrency", "timeout", "connect_timeout", "retries", "batch_size", "device", "dtype", "max_tokens",
}


def _options(query: str, spec: str) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    unknown = sorted(set(options) - _KNOWN_OPTIONS)
    if unknown:
        raise OptionError(f"model spec {spec!r}: unknown option {unknown[0]!r} (known: {sorted(_KNOWN_OPTIONS)})")
    return options


def _int_option(options: dict[str, str], name: str, default: int, spec: str) -> int:
    try:
        value = int(options.get(name, default))
    except ValueError:
        raise OptionError(f"model spec {spec!r}: {name} must be a whole number") from None
    if value < 1 and name != "retries":
        raise OptionError(f"model spec {spec!r}: {name} must be at least 1")
    return value


def make_backend(
    spec: str,
    *,
    concurrency: int | None = None,
    resolve_server: ServerResolver | None = None,
) -> ChatBackend:
    """Build the chat backend a model spec names.

    Syntax (options after `?`, joined by `&`):

    - `openai:MODEL@http://HOST:PORT/v1` — any OpenAI-compatible server (vLLM, SGLang, llama.cpp,
      hosted APIs). Without `@URL` it is `https://api.openai.com/v1`. The API key is read from the
      environment variable named by `?key_env=VAR` (default `OPENAI_API_KEY`); it is never stored.
      Options: `concurrency` (default 32), `timeout` seconds to wait for the answer (default 120),
      `connect_timeout` seconds to connect (default 10), `retries` (default 6). Other parameters
      after an explicit URL stay on the URL (`@https://HOST/openai/deployments/D?api-version=2024-06-01`).
      Proxies come from HTTP(S)_PROXY, then ALL_PROXY, unless NO_PROXY (http:// proxies only).
    - `hf:PATH` — a local transformers model folder, or a `.gguf` file, generating in batches on
      GPU when there is one, else CPU. Options: `batch_size` (default 8), `device`, `dtype`, and
      `max_tokens` (a cap on new tokens per answer, for small models on CPU).
    - `vllm:SERVER_ID` — a `vllm serve` started by `workbench llm serve`; resolved through
      `resolve_server(id) -> (base_url, model)` (the front ends pass a store lookup).

    `concurrency`, when given, overrides the spec's own request concurrency.
    """
    parsed = parse_spec(spec)
    options = parsed.options
    if parsed.kind == "hf":
        # Deferred: torch and transformers load only when a local model is asked for.
        from core.llm.hf_chat import TransformersChatBackend

        return TransformersChatBackend(
            parsed.target,
            batch_size=_int_option(options, "batch_size", 8, spec),
            device=options.get("device"),
            dtype=options.get("dtype"),
            max_tokens=_int_option(options, "max_tokens", 0, spec) if "max_tokens" in options else None,
        )
    from core.llm.openai_client import OpenAIChatBackend, RetryPolicy

    base_url, model = parsed.base_url, parsed.target
    if parsed.kind == "vllm":
        if resolve_server is None:
            raise OptionError(f"model spec {spec!r}: a managed vLLM server needs the store to resolve it")
        base_url, model = resolve_server(parsed.target)
    return OpenAIChatBackend(
        model,
        base_url,
        api_key_env=options.get("key_env", "OPENAI_API_KEY"),
        concurrency=concurrency or _int_option(options, "concurrency", 32, spec),
        timeout_s=_seconds_option(options, "timeout", 120.0, spec),
        connect_timeout_s=_seconds_option(options, "connect_timeout", 10.0, spec),
        retry=RetryPolicy(max_retries=_int_option(options, "retries", 6, spec)),
    )


def _seconds_option(options: dict[str, str], name: str, default: float, spec: str) -> float:
    try:
        value = float(options.get(name, default))
    except ValueError:
        raise OptionError(f"model spec {spec!r}: {name} must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise OptionError(f"model spec {spec!r}: {name} must be a positive number of seconds")
    return value
