"""Fetch the public split, label and description files the paper protocols need (docs/design.md §5).

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
import logging
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from ezclip.prep.http import CHUNK, NetworkError, read_body, with_retries

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
BASE_URL_ENV = "EZCLIP_SPLITS_BASE_URL"
STATUSES = ("verified", "unverified", "missing", "failed")
COLUMNS = ("repo", "commit", "path", "sha256", "lines", "bytes")
SOCKET_TIMEOUT = 60.0  # seconds one network read may wait
FILE_DEADLINE = 600.0  # seconds one file's download may take in all


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
        text = resources.files("ezclip.prep").joinpath("resources.tsv").read_text(encoding="utf-8")
        path = "ezclip/prep/resources.tsv"
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


class _Measure:
    """A sink for file chunks: writes them on and keeps the sha256, line count and size."""

    def __init__(self, out: BinaryIO | None = None):
        self.out, self.digest, self.newlines, self.size, self.last = out, hashlib.sha256(), 0, 0, b"\n"

    def __call__(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.newlines += chunk.count(b"\n")
        self.size += len(chunk)
        self.last = chunk[-1:]
        if self.out is not None:
            self.out.write(chunk)

    def result(self) -> tuple[str, int, int]:
        """(sha256 hex, line count, size in bytes)."""
        lines = self.newlines + (0 if self.size == 0 or self.last == b"\n" else 1)
        return self.digest.hexdigest(), lines, self.size


def _read_file(path: Path) -> Callable[[Callable[[bytes], object]], None]:
    def read_into(sink: Callable[[bytes], object]) -> None:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                sink(chunk)

    return read_into


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
    sink = _Measure()
    _read_file(path)(sink)
    return sink.result()


def install(resource: Resource, read_into: Callable[[Callable[[bytes], object]], None], target: Path) -> Outcome:
    """Stream a file (``read_into(sink)`` pushes its chunks) into a temp file beside ``target``, check it,
    and rename it into place only if it passes.

    A failed check or an interrupted copy leaves no file behind (and an older file at ``target`` untouched).
    The installed file gets the usual permissions (0666 minus the umask), not mkstemp's 0600.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            sink = _Measure(out)
            read_into(sink)
        status, detail = check(resource, *sink.result())
        if status == "failed":
            Path(tmp).unlink()
        else:
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        return Outcome(resource, status, detail)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def download(
    resource: Resource, target: Path, base_url: str, retries: int, delay: float, timeout: float = SOCKET_TIMEOUT
) -> Outcome:
    """Download and install one resource, retrying transient faults (a reply cut off mid-file too)."""
    url = resource.url(base_url)

    def attempt() -> Outcome:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https or a test's loopback)
            deadline = time.monotonic() + FILE_DEADLINE
            return install(resource, lambda sink: read_body(response, deadline, sink), target)

    try:
        return with_retries(attempt, url, retries, delay)
    except NetworkError as error:
        return Outcome(resource, "missing" if error.status == 404 else "failed", str(error))


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
    # Never follow a link out of the source folder (a file with no known hash would be taken as it is).
    if not source.resolve().is_relative_to(source_dir.resolve()):
        return Outcome(resource, "failed", f"{source} leads outside {source_dir} (to {source.resolve()}); refused")
    return install(resource, _read_file(source), target)


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
