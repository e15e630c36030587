"""The one retry loop of the dataset tools' network requests (split files, class descriptions).

Transient faults (connection errors, timeouts, a reply cut off mid-body, HTTP 408/409/425/429
and 5xx) are retried with exponential backoff (a server's Retry-After wins, capped); anything
else, or a fault that outlasts the retries, becomes one `NetworkError` with a readable message
(no traceback). `read_body` reads a reply under a total deadline, so a server that trickles one
byte per second cannot hold a request open forever.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
from collections.abc import Callable
from typing import BinaryIO, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_WAIT = 60.0  # seconds; caps exponential backoff and a server's Retry-After
CHUNK = 1 << 16


class NetworkError(ConnectionError):
    """A request that failed for good; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class IncompleteBody(OSError):
    """A reply that stopped before its announced length (a connection dropped mid-body)."""


def read_body(response: BinaryIO, deadline: float, sink: Callable[[bytes], object] | None = None) -> bytes:
    """Read `response` to its end before `time.monotonic()` passes `deadline`.

    Chunks go to `sink` when given (nothing is kept), else they are returned joined. Raises
    TimeoutError past the deadline, IncompleteBody when fewer bytes arrive than Content-Length says.
    """
    headers = getattr(response, "headers", None)
    length = headers.get("Content-Length") if headers is not None else None
    announced = int(length) if length and length.isdigit() else None
    read = getattr(response, "read1", response.read)  # read1 returns after one socket read: the deadline is checked
    parts, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reply not complete before its deadline ({size} bytes so far)")
        chunk = read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if sink is not None:
            sink(chunk)
        else:
            parts.append(chunk)
    if announced is not None and size != announced:
        raise IncompleteBody(f"got {size} of {announced} bytes")
    return b"".join(parts)


def _retry_after(error: Exception) -> float | None:
    value = getattr(error, "headers", None) and error.headers.get("Retry-After")
    if value and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return None


def with_retries(
    attempt: Callable[[], T],
    what: str,
    retries: int = 4,
    delay: float = 1.0,
    redact: Callable[[str], str] = lambda text: text,
) -> T:
    """`attempt()` until it returns; transient faults retried `retries` times, backoff from `delay` seconds.

    Raises NetworkError naming `what` (e.g. the URL) for a permanent fault or the last transient one;
    `redact` cleans server text before it enters a message (e.g. removes an API key).
    """
    for number in range(retries + 1):
        try:
            return attempt()
        except urllib.error.HTTPError as error:
            body = ""
            try:
                body = redact(error.read().decode("utf-8", "replace")[:300])
            except (OSError, http.client.HTTPException):
                pass
            message = f"{what}: HTTP {error.code} {error.reason}" + (f": {body}" if body else "")
            if error.code not in RETRY_STATUS or number == retries:
                raise NetworkError(message, status=error.code) from None
            reason, wait = f"HTTP {error.code}", _retry_after(error)
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            IncompleteBody,
            http.client.HTTPException,
        ) as error:
            reason = redact(str(getattr(error, "reason", None) or error) or type(error).__name__)
            if number == retries:
                raise NetworkError(f"{what}: {reason} (after {retries} retries)") from None
            wait = None
        wait = min(MAX_WAIT, delay * 2**number if wait is None else wait)
        log.warning("%s: %s; retry %d/%d in %.1f s", what, reason, number + 1, retries, wait)
        time.sleep(wait)
    raise AssertionError("unreachable")
