"""fetch-splits against a loopback HTTP server and a local source folder, from a small fake table."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ezclip.cli import main
from ezclip.prep import splits

COMMIT = "0" * 40
GOOD = b"a/v1.avi 0\nb/v2.avi 1\n"
OTHER = b"id,name\n0,wave\n"
BIG = b"x 0\n" * 5 + b"y 1"  # no final newline: 6 lines
FILES = {  # path in the repo -> (served bytes, bytes the table expects, sha in table?)
    "lists/good.txt": (GOOD, GOOD, True),
    "labels/other.csv": (OTHER, OTHER, True),
    "lists/tampered.txt": (GOOD.replace(b"1", b"2"), GOOD, True),
    "lists/unknown_hash.txt": (BIG, BIG, False),
    "lists/flaky.txt": (GOOD, GOOD, True),  # 503 on the first request, then served
}
ABSENT = "lists/absent.txt"  # in the table, 404 on the server


def write_table(path: Path, rows: list[tuple[str, bytes, bool]]) -> Path:
    """A resources table in the real format (``unknown`` hash and line count for unhashed rows)."""
    lines = ["repo\tcommit\tpath\tsha256\tlines\tbytes"]
    for repo_path, expected, hashed in rows:
        sha = hashlib.sha256(expected).hexdigest() if hashed else "unknown"
        n_lines = expected.count(b"\n") + (not expected.endswith(b"\n"))
        lines.append(f"owner/repo\t{COMMIT}\t{repo_path}\t{sha}\t{n_lines}\t{len(expected)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def table(tmp_path) -> list[splits.Resource]:
    rows = [(p, expected, hashed) for p, (_, expected, hashed) in FILES.items()] + [(ABSENT, GOOD, True)]
    return splits.read_resources(write_table(tmp_path / "resources.tsv", rows))


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves FILES under /owner/repo/<commit>/<path>; counts requests per path."""

    requests: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        prefix = f"/owner/repo/{COMMIT}/"
        path = self.path[len(prefix) :] if self.path.startswith(prefix) else None
        Handler.requests[path] = Handler.requests.get(path, 0) + 1
        if path == "lists/flaky.txt" and Handler.requests[path] == 1:
            self.send_error(503)
        elif path == "lists/truncated.txt":
            # Promise more than is sent, then hang up: the client sees an incomplete body.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(GOOD)
        elif path in FILES:
            body = FILES[path][0]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.requests = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(dest: Path) -> list[Path]:
    """Temp files that a fetch must never leave behind."""
    return [p for p in dest.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]


def statuses(outcomes: list[splits.Outcome]) -> dict[str, str]:
    return {o.resource.path: o.status for o in outcomes}


def test_packaged_table_reads_and_points_at_pinned_github_commits():
    table = splits.read_resources()
    assert len(table) >= 70 and all(len(r.commit) == 40 for r in table)
    unknown = [r for r in table if r.sha256 is None]
    assert unknown and all(r.lines is None for r in unknown)
    first = table[0]
    assert first.url() == f"https://raw.githubusercontent.com/{first.repo}/{first.commit}/{first.path}"


def test_download_verifies_retries_and_leaves_nothing_half_written(tmp_path, table, server):
    dest = tmp_path / "dest"
    outcomes = splits.fetch_splits(dest, table=table, base_url=server, retries=2, delay=0)
    assert statuses(outcomes) == {
        "lists/good.txt": "verified",
        "labels/other.csv": "verified",
        "lists/tampered.txt": "failed",
        "lists/unknown_hash.txt": "unverified",
        "lists/flaky.txt": "verified",
        ABSENT: "missing",
    }
    root = dest / "owner" / "repo"
    assert (root / "lists" / "good.txt").read_bytes() == GOOD
    assert (root / "lists" / "unknown_hash.txt").read_bytes() == BIG
    assert not (root / "lists" / "tampered.txt").exists()  # failed hash: no file at all
    assert not (root / "lists" / "absent.txt").exists()
    assert Handler.requests["lists/flaky.txt"] == 2  # one 503, one retry
    assert leftovers(dest) == []
    tampered = next(o for o in outcomes if o.status == "failed")
    assert "sha256" in tampered.detail
    assert "6 lines" in next(o for o in outcomes if o.status == "unverified").detail


def test_second_run_keeps_verified_files_without_downloading(tmp_path, table, server):
    dest = tmp_path / "dest"
    only = [r for r in table if r.path == "lists/good.txt"]
    splits.fetch_splits(dest, table=only, base_url=server, delay=0)
    splits.fetch_splits(dest, table=only, base_url=server, delay=0)
    assert Handler.requests["lists/good.txt"] == 1


def test_connection_dropped_mid_file_leaves_no_partial_file(tmp_path, server):
    table = splits.read_resources(write_table(tmp_path / "t.tsv", [("lists/truncated.txt", GOOD * 50, True)]))
    dest = tmp_path / "dest"
    (outcome,) = splits.fetch_splits(dest, table=table, base_url=server, retries=1, delay=0)
    assert outcome.status == "failed" and "got 22 of 1000 bytes (after 1 retries)" in outcome.detail, outcome.detail
    assert Handler.requests["lists/truncated.txt"] == 2
    assert list(dest.rglob("*.txt")) == [] and leftovers(dest) == []


def test_server_errors_exhaust_retries(tmp_path, table):
    # Nothing listens on this port (a closed server's): connection refused on every try.
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    httpd.server_close()
    outcomes = splits.fetch_splits(tmp_path, table=table[:1], base_url=f"http://127.0.0.1:{port}", retries=1, delay=0)
    assert outcomes[0].status == "failed" and "after 1 retries" in outcomes[0].detail


def make_source(root: Path, names: list[str]) -> Path:
    for name in names:
        path = root / "owner" / "repo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILES[name][0])
    return root


def test_source_dir_same_verification(tmp_path, table):
    source = make_source(tmp_path / "src", ["lists/good.txt", "lists/tampered.txt", "lists/unknown_hash.txt"])
    outcomes = splits.fetch_splits(tmp_path / "dest", table=table, source_dir=source)
    assert statuses(outcomes) == {
        "lists/good.txt": "verified",
        "labels/other.csv": "missing",
        "lists/tampered.txt": "failed",
        "lists/unknown_hash.txt": "unverified",
        "lists/flaky.txt": "missing",
        ABSENT: "missing",
    }
    assert leftovers(tmp_path / "dest") == []


def test_cli_missing_is_an_error_unless_allowed(tmp_path, capsys):
    table = write_table(tmp_path / "t.tsv", [("lists/good.txt", GOOD, True), ("labels/other.csv", OTHER, True)])
    source = make_source(tmp_path / "src", ["lists/good.txt"])
    args = ["data", "fetch-splits", "--table", str(table), "--source-dir", str(source), "--dest", str(tmp_path / "d")]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "error: missing owner/repo/labels/other.csv" in captured.err
    assert "verified: 1  unverified: 0  missing: 1  failed: 0  (of 2)" in captured.out
    assert main([*args, "--allow-missing"]) == 0
    assert "warning: missing owner/repo/labels/other.csv" in capsys.readouterr().err
    assert main([*args, "--only", "good"]) == 0


def test_cli_failed_hash_names_the_file(tmp_path, capsys, server, monkeypatch):
    table = write_table(tmp_path / "t.tsv", [("lists/tampered.txt", GOOD, True)])
    monkeypatch.setenv(splits.BASE_URL_ENV, server)  # the environment variable also sets the server
    assert main(["data", "fetch-splits", "--table", str(table), "--dest", str(tmp_path / "d")]) == 1
    assert "error: owner/repo/lists/tampered.txt: sha256" in capsys.readouterr().err


def test_malformed_table_names_the_line(tmp_path):
    path = write_table(tmp_path / "t.tsv", [("lists/good.txt", GOOD, True)])
    path.write_text(path.read_text() + f"owner/repo\t{COMMIT}\tx.txt\tnot-a-hash\t1\t2\n")
    with pytest.raises(ValueError, match=r"t.tsv:3: sha256 'not-a-hash'"):
        splits.read_resources(path)


def test_source_dir_links_that_leave_it_are_refused(tmp_path):
    # A file with no known hash is taken as it is: a link out of the source folder must not bring anything in.
    row = ["owner/repo", COMMIT, "lists/unknown_hash.txt", "unknown", "unknown", "unknown"]
    (tmp_path / "t.tsv").write_text("repo\tcommit\tpath\tsha256\tlines\tbytes\n" + "\t".join(row) + "\n")
    table = splits.read_resources(tmp_path / "t.tsv")
    source = tmp_path / "src" / "owner" / "repo" / "lists"
    source.mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("not a split file\n")
    (source / "unknown_hash.txt").symlink_to(outside)
    (outcome,) = splits.fetch_splits(tmp_path / "dest", table=table, source_dir=tmp_path / "src")
    assert outcome.status == "failed" and "leads outside" in outcome.detail
    assert not (tmp_path / "dest" / "owner" / "repo" / "lists" / "unknown_hash.txt").exists()


def test_installed_files_get_the_usual_permissions(tmp_path, table):
    import os
    import stat

    source = make_source(tmp_path / "src", ["lists/good.txt"])
    old = os.umask(0o022)
    try:
        splits.fetch_splits(tmp_path / "dest", table=table[:1], source_dir=source)
    finally:
        os.umask(old)
    installed = tmp_path / "dest" / "owner" / "repo" / "lists" / "good.txt"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o644
