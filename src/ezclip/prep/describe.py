"""Generate one description per class with any OpenAI-compatible chat endpoint (docs/design.md §5).

ezclip data describe --labels labels.csv --out descriptions.csv [--base-url URL] [--model NAME]
    [--api-key-env VAR] [--template "describe {} as an action performed by humans"] [--max-retries N]
    [--timeout S] [--deadline S]

Sends ``POST {base_url}/chat/completions`` with ``{"model", "messages": [{"role": "user", "content":
template filled with the class name}]}`` and keeps the reply's text, stripped. Base URL and model come
from the arguments or $OPENAI_BASE_URL / $OPENAI_MODEL; the key is read from the environment variable
named by --api-key-env (default OPENAI_API_KEY) and is never printed or logged. The output CSV
(``id,name,description``, readable by ezclip.data.text) is rewritten atomically after every class, so
an interrupted run resumes where it stopped: classes that already have a description are skipped.
Each request has a total deadline (`--timeout`, whatever the server's pace) and the run one too
(`--deadline`); a reply cut off mid-body is retried like any transient fault.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ezclip.data.lists import read_labels
from ezclip.data.text import normalize_name, template_texts
from ezclip.prep.formats.common import atomic_write_text
from ezclip.prep.http import NetworkError, read_body, with_retries

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "describe {} as an action performed by humans"  # the paper's prompt
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class DescribeError(RuntimeError):
    """The endpoint refused or kept failing; the message never contains the API key."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: ``api_key`` may be empty (local servers need none); it is kept out of repr."""

    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 120.0

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, api_key=<hidden>)"

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"

    def redact(self, text: str) -> str:
        """``text`` with the key removed, for error messages built from server replies."""
        return text.replace(self.api_key, "<hidden>") if self.api_key else text


def _post(endpoint: Endpoint, payload: dict) -> dict:
    """One POST of ``payload`` as JSON, its whole reply read within ``endpoint.timeout`` seconds; the decoded JSON."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    request = urllib.request.Request(endpoint.url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    deadline = time.monotonic() + endpoint.timeout
    with urllib.request.urlopen(request, timeout=endpoint.timeout) as response:  # noqa: S310 (user's endpoint)
        body = read_body(response, deadline)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DescribeError(f"{endpoint.url}: the reply is not JSON") from None


def _reply_text(reply: dict) -> str:
    """The first choice's message content, stripped; DescribeError when the reply has none."""
    try:
        text = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise DescribeError(f"reply without choices[0].message.content: {str(reply)[:300]}") from None
    if not isinstance(text, str) or not text.strip():
        raise DescribeError("the endpoint returned an empty description")
    return text.strip()


def describe(endpoint: Endpoint, prompt: str, max_retries: int = 5, delay: float = 1.0) -> str:
    """Ask the endpoint for one completion of ``prompt``; returns its text, stripped.

    Retries 408/409/425/429, 5xx, connection errors, timeouts and cut-off replies with exponential backoff.
    Raises:
        DescribeError: another HTTP error (401, 400, ...), a malformed reply, or still failing after
            ``max_retries`` retries; the message never contains the API key.
    """
    payload = {"model": endpoint.model, "messages": [{"role": "user", "content": prompt}]}
    try:
        reply = with_retries(lambda: _post(endpoint, payload), endpoint.url, max_retries, delay, endpoint.redact)
    except NetworkError as error:
        raise DescribeError(str(error)) from None
    return _reply_text(reply)


def read_done(path: str | Path) -> dict[str, str]:
    """Descriptions already in an output CSV (``id,name,description``), keyed by normalized class name."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().casefold() for h in next(reader, [])]
        if header != ["id", "name", "description"]:
            raise ValueError(f"{path}:1: expected header 'id,name,description' to resume from, got {header}")
        return {normalize_name(row[1]): row[2].strip() for row in reader if len(row) == 3 and row[2].strip()}


def write_descriptions(path: str | Path, names: list[str], texts: dict[str, str]) -> None:
    """Write ``id,name,description`` rows for the classes in ``texts`` (in id order), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "name", "description"])
    for class_id, name in enumerate(names):
        if normalize_name(name) in texts:
            writer.writerow([class_id, name, texts[normalize_name(name)]])
    atomic_write_text(path, buffer.getvalue())


def describe_classes(
    names: list[str],
    out: str | Path,
    endpoint: Endpoint,
    template: str = DEFAULT_TEMPLATE,
    max_retries: int = 5,
    delay: float = 1.0,
    deadline: float | None = None,
) -> dict[str, int]:
    """Describe each class not yet in ``out``, saving after every class; returns {described, skipped, total}.

    ``deadline``: seconds for the whole run; past it, DescribeError (the classes done so far are kept).
    """
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    texts = read_done(out)
    todo = [name for name in names if normalize_name(name) not in texts]
    stop_at = None if deadline is None else time.monotonic() + deadline
    for number, name in enumerate(todo, start=1):
        if stop_at is not None and time.monotonic() > stop_at:
            raise DescribeError(f"the run's {deadline:g} s deadline passed after {number - 1} of {len(todo)} classes")
        prompt = template_texts(name, [template])[0]
        texts[normalize_name(name)] = describe(endpoint, prompt, max_retries, delay)
        write_descriptions(out, names, texts)
        log.info("described %d/%d: %s", number, len(todo), name)
    if not todo:
        write_descriptions(out, names, texts)  # normalise an existing file's order; a no-op when complete
    return {"described": len(todo), "skipped": len(names) - len(todo), "total": len(names)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--labels", required=True, help="label CSV 'id,name'")
    parser.add_argument("--out", required=True, help="descriptions CSV 'id,name,description' (resumed if present)")
    parser.add_argument("--base-url", default=None, help=f"default: $OPENAI_BASE_URL or {DEFAULT_BASE_URL}")
    parser.add_argument("--model", default=None, help="default: $OPENAI_MODEL")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help="prompt; {} is replaced by the class name")
    parser.add_argument("--max-retries", type=int, default=5, help="retries per class on 429/5xx/connection errors")
    parser.add_argument("--retry-delay", type=float, default=1.0, help="first retry wait in seconds (doubles)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request, the whole reply included")
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the whole run (default: none)")


def run(args: argparse.Namespace) -> int:
    model = args.model or os.environ.get("OPENAI_MODEL")
    if not model:
        raise ValueError("no model: pass --model or set OPENAI_MODEL")
    endpoint = Endpoint(
        base_url=args.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
        model=model,
        api_key=os.environ.get(args.api_key_env, ""),
        timeout=args.timeout,
    )
    if not endpoint.api_key:
        log.warning("$%s is not set: sending requests without an API key", args.api_key_env)
    names = read_labels(args.labels)
    try:
        summary = describe_classes(
            names, args.out, endpoint, args.template, args.max_retries, args.retry_delay, args.deadline
        )
    except DescribeError as error:
        print(f"ezclip data describe: error: {error} (rerun to resume; finished classes are kept)", file=sys.stderr)
        return 1
    print(json.dumps({"out": str(args.out), **summary}))
    return 0
