"""Fetch the public split, label and description files the paper protocols need (DESIGN.md section 6).

ezclip data fetch-splits [--dest DIR] [--source-dir DIR] [--allow-missing] [--only SUBSTRING]

Each file in the packaged ``resources.tsv`` (repository, pinned commit, path, sha256, line count,
size) is taken from ``https://raw.githubusercontent.com/<repo>/<commit>/<path>`` (or from a local
folder laid out as ``<source-dir>/<owner>/<repo>/<path>``) into ``<dest>/<owner>/<repo>/<path>`` and
checked against its sha256. Files whose hash is unknown are checked by line count and size where
those are known and reported as unverified. Nothing is shipped with the package but the table:
the files are fetched on the user's machine from the pinned commits.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
BASE_URL_ENV = "EZCLIP_SPLITS_BASE_URL"
STATUSES = ("verified", "unverified", "missing", "failed")
COLUMNS = ("repo", "commit", "path", "sha256", "lines", "bytes")
# HTTP answers worth another try: rate limits and server-side trouble.
RETRY_STATUS = {429, 500, 502, 503, 504}
CHUNK = 1 << 16


@dataclass(frozen=True)
class Resource:
    """One row of ``resources.tsv``; ``sha256``, ``lines`` and ``size`` are None where unknown."""

    repo: str
    commit: str
    path: str
    sha256: str | None
    lines: int | None
    size: int | None

    @property
    def relative(self) -> Path:
        """Where the file goes under the destination (and lies under a source folder): owner/name/path."""
        owner, name = self.repo.split("/")
        return Path(owner, name, *self.path.split("/"))

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        """The raw-file URL at the pinned commit."""
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{self.path}"


@dataclass
class Outcome:
    """What happened to one resource: ``status`` in STATUSES, ``detail`` a short human reason."""

    resource: Resource
    status: str
    detail: str = ""


class FetchError(Exception):
    """A resource that could not be fetched (absent at the source, or network failure after retries)."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def _optional_int(text: str) -> int | None:
    """Integer cell or None for 'unknown' / free text like 'over 4 MiB'."""
    return int(text) if text.strip().isdigit() else None


def read_resources(path: str | Path | None = None) -> list[Resource]:
    """Read a resources table (tab-separated, header ``repo commit path sha256 lines bytes``).

    Args:
        path: the table; default: the copy packaged with ezclip.
    Raises:
        ValueError: a malformed row, naming file:line.
    """
    if path is None:
        text = resources.files("ezclip.data").joinpath("resources.tsv").read_text(encoding="utf-8")
        path = "ezclip/data/resources.tsv"
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows = [(n, line.split("\t")) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not rows or tuple(c.strip() for c in rows[0][1]) != COLUMNS:
        raise ValueError(f"{path}:1: expected the tab-separated header {' '.join(COLUMNS)!r}")
    table = []
    for number, cells in rows[1:]:
        cells = [c.strip() for c in cells]
        if len(cells) != len(COLUMNS) or cells[0].count("/") != 1 or not cells[2]:
            raise ValueError(f"{path}:{number}: expected {len(COLUMNS)} tab-separated fields, got {cells}")
        sha = cells[3].lower()
        if sha != "unknown" and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise ValueError(f"{path}:{number}: sha256 {cells[3]!r} is neither 64 hex digits nor 'unknown'")
        table.append(
            Resource(
                cells[0],
                cells[1],
                cells[2],
                None if sha == "unknown" else sha,
                _optional_int(cells[4]),
                _optional_int(cells[5]),
            )
        )
    return table


def _copy_checked(source: BinaryIO, target: BinaryIO) -> tuple[str, int, int]:
    """Copy ``source`` to ``target``; returns (sha256 hex, line count, size in bytes)."""
    digest, newlines, size, last = hashlib.sha256(), 0, 0, b"\n"
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        newlines += chunk.count(b"\n")
        size += len(chunk)
        target.write(chunk)
        last = chunk[-1:]
    lines = newlines + (0 if size == 0 or last == b"\n" else 1)
    return digest.hexdigest(), lines, size


def check(resource: Resource, sha256: str, lines: int, size: int) -> tuple[str, str]:
    """Judge a file's measured hash, lines and size against its row: (status, detail).

    A known hash decides alone (verified / failed); without one, a known line count or size that
    disagrees fails, and agreement (or nothing to compare) is 'unverified'.
    """
    if resource.sha256 is not None:
        if sha256 == resource.sha256:
            return "verified", ""
        return "failed", f"sha256 {sha256} != expected {resource.sha256}"
    if resource.lines is not None and lines != resource.lines:
        return "failed", f"{lines} lines != expected {resource.lines} (no known sha256)"
    if resource.size is not None and size != resource.size:
        return "failed", f"{size} bytes != expected {resource.size} (no known sha256)"
    checked = [f"{lines} lines" if resource.lines is not None else "", f"{size} bytes" if resource.size else ""]
    checked = [c for c in checked if c]
    return "unverified", f"no known sha256; {' and '.join(checked)} match" if checked else "no known sha256"


def measure(path: Path) -> tuple[str, int, int]:
    """(sha256, lines, bytes) of a file on disk."""
    with open(path, "rb") as f, open(os.devnull, "wb") as sink:
        return _copy_checked(f, sink)


def open_url(url: str, retries: int = 4, delay: float = 1.0, timeout: float = 60.0) -> BinaryIO:
    """Open ``url`` for reading, retrying connection errors, timeouts, 429 and 5xx with exponential backoff.

    Raises:
        FetchError: 404 (``missing=True``), another HTTP error, or still failing after ``retries`` retries.
    """
    for attempt in range(retries + 1):
        try:
            return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (https or a test's loopback URL)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise FetchError(f"{url}: 404 not found", missing=True) from None
            if error.code not in RETRY_STATUS or attempt == retries:
                raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from None
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
            if attempt == retries:
                raise FetchError(f"{url}: {getattr(error, 'reason', error)} (after {retries} retries)") from None
            reason = str(getattr(error, "reason", error))
        wait = delay * 2**attempt
        log.warning("%s: %s; retry %d/%d in %.1f s", url, reason, attempt + 1, retries, wait)
        time.sleep(wait)
    raise AssertionError("unreachable")


class IncompleteRead(OSError):
    """Fewer bytes arrived than the server announced (a connection dropped mid-file)."""


def install(resource: Resource, source: BinaryIO, target: Path, announced: int | None = None) -> Outcome:
    """Stream ``source`` into a temp file beside ``target``, check it, and rename it into place only if it passes.

    ``announced``: the size the server promised (Content-Length); fewer bytes raise IncompleteRead.
    A failed check or an interrupted copy leaves no file behind (and an older file at ``target`` untouched).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, source:
            measured = _copy_checked(source, out)
        if announced is not None and measured[2] != announced:
            raise IncompleteRead(f"got {measured[2]} of {announced} bytes")
        status, detail = check(resource, *measured)
        if status == "failed":
            Path(tmp).unlink()
        else:
            os.replace(tmp, target)
        return Outcome(resource, status, detail)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download(resource: Resource, target: Path, base_url: str, retries: int, delay: float) -> Outcome:
    """Download and install one resource; a connection that drops mid-file is retried like one that fails to open."""
    url = resource.url(base_url)
    for attempt in range(retries + 1):
        try:
            response = open_url(url, retries=retries, delay=delay)
        except FetchError as error:
            return Outcome(resource, "missing" if error.missing else "failed", str(error))
        length = response.headers.get("Content-Length")
        try:
            return install(resource, response, target, int(length) if length and length.isdigit() else None)
        except (OSError, http.client.HTTPException) as error:
            if attempt == retries:
                return Outcome(resource, "failed", f"read error: {error} (after {retries} retries)")
            wait = delay * 2**attempt
            log.warning("%s: read error %s; retry %d/%d in %.1f s", url, error, attempt + 1, retries, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def fetch_one(
    resource: Resource,
    dest: Path,
    base_url: str = DEFAULT_BASE_URL,
    source_dir: Path | None = None,
    retries: int = 4,
    delay: float = 1.0,
) -> Outcome:
    """Bring one resource to ``dest/<owner>/<repo>/<path>``; a file already there that checks out is kept."""
    target = dest / resource.relative
    if target.is_file():
        status, detail = check(resource, *measure(target))
        if status != "failed":
            return Outcome(resource, status, detail or "already present")
        log.info("%s: present but %s; fetching again", target, detail)
    if source_dir is None:
        return download(resource, target, base_url, retries, delay)
    source = source_dir / resource.relative
    if not source.is_file():
        return Outcome(resource, "missing", f"not in {source_dir}")
    return install(resource, open(source, "rb"), target)


def fetch_splits(
    dest: str | Path,
    table: list[Resource] | None = None,
    base_url: str | None = None,
    source_dir: str | Path | None = None,
    only: str | None = None,
    retries: int = 4,
    delay: float = 1.0,
) -> list[Outcome]:
    """Fetch every resource of ``table`` (default: the packaged table) whose ``repo/path`` contains ``only``.

    ``base_url`` defaults to $EZCLIP_SPLITS_BASE_URL, then raw.githubusercontent.com; ``source_dir``
    replaces the network by a local copy laid out as ``<owner>/<repo>/<path>``.
    """
    table = read_resources() if table is None else table
    if only:
        table = [r for r in table if only in f"{r.repo}/{r.path}"]
    base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    dest, source = Path(dest), Path(source_dir) if source_dir is not None else None
    if source is not None and not source.is_dir():
        raise FileNotFoundError(f"{source}: source folder not found")
    return [fetch_one(r, dest, base_url, source, retries, delay) for r in table]


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain-text report: one line per file that is not verified, then the count per status."""
    width = max((len(f"{o.resource.repo}/{o.resource.path}") for o in outcomes), default=10)
    lines = [
        f"{o.status:<10}  {f'{o.resource.repo}/{o.resource.path}':<{width}}  {o.detail}"
        for o in outcomes
        if o.status != "verified"
    ]
    counts = {s: sum(o.status == s for o in outcomes) for s in STATUSES}
    lines.append("  ".join(f"{s}: {n}" for s, n in counts.items()) + f"  (of {len(outcomes)})")
    return "\n".join(lines)


def default_dest() -> str:
    """``$EZCLIP_DATA/splits``, or ``data/splits`` (the same data folder as conf/paths)."""
    return str(Path(os.environ.get("EZCLIP_DATA", "data"), "splits"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--dest", default=None, help="destination folder (default: $EZCLIP_DATA/splits or data/splits)")
    parser.add_argument("--source-dir", default=None, help="take the files from DIR/<owner>/<repo>/<path> instead")
    parser.add_argument("--allow-missing", action="store_true", help="files absent from the source: warn, not fail")
    parser.add_argument("--only", default=None, metavar="SUBSTRING", help="only files whose repo/path contains this")
    parser.add_argument("--table", default=None, help="a resources table other than the packaged one")
    parser.add_argument("--base-url", default=None, help=f"raw-file server (default: ${BASE_URL_ENV} or GitHub)")
    parser.add_argument("--retries", type=int, default=4, help="retries per file on network errors")
    parser.add_argument("--retry-delay", type=float, default=1.0, help="first retry wait in seconds (doubles)")


def run(args: argparse.Namespace) -> int:
    table = read_resources(args.table) if args.table else None
    outcomes = fetch_splits(
        args.dest or default_dest(),
        table=table,
        base_url=args.base_url,
        source_dir=args.source_dir,
        only=args.only,
        retries=args.retries,
        delay=args.retry_delay,
    )
    print(summary_table(outcomes))
    failed = [o for o in outcomes if o.status == "failed"]
    missing = [o for o in outcomes if o.status == "missing"]
    for o in failed:
        print(f"error: {o.resource.repo}/{o.resource.path}: {o.detail}", file=sys.stderr)
    for o in missing:
        kind = "warning" if args.allow_missing else "error"
        print(f"{kind}: missing {o.resource.repo}/{o.resource.path}: {o.detail}", file=sys.stderr)
    return 1 if failed or (missing and not args.allow_missing) else 0
