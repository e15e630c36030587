"""describe: class descriptions from a fake OpenAI-compatible endpoint on the loopback interface."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from ezclip.cli import main
from ezclip.data.text import read_descriptions
from ezclip.prep import describe

KEY = "sk-test-SECRET-0123456789"
MODEL = "tiny-chat"


class Endpoint(http.server.BaseHTTPRequestHandler):
    """Checks each request's shape; answers 500, then 429, then descriptions; 401 for prompts naming 'refuse'."""

    calls: list[dict] = []
    failures: list[int | str] = []  # HTTP statuses, "cut" (reply cut mid-body) or "trickle" (1 byte per second)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Endpoint.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        prompt = body["messages"][0]["content"]
        failure = Endpoint.failures.pop(0) if Endpoint.failures else None
        if failure in ("cut", "trickle"):
            data = json.dumps({"choices": [{"message": {"content": "never complete"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for byte in data[: len(data) // 2] if failure == "cut" else data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if failure == "trickle":
                        time.sleep(1.0)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up at its deadline
        elif failure is not None:
            self._reply(failure, {"error": {"message": "try again"}})
        elif "refuse" in prompt:
            # Some servers echo the credential back: it must not reach the user's terminal.
            self._reply(401, {"error": {"message": f"invalid key {self.headers.get('Authorization')}"}})
        else:
            text = f"\n\n  A person is seen {prompt.removeprefix('describe ')}.  \n"
            self._reply(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

    def _reply(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        if code == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Endpoint.calls, Endpoint.failures = [], []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server)
    monkeypatch.setenv("OPENAI_MODEL", MODEL)
    monkeypatch.setenv("MY_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def write_labels(path, names):
    path.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    return path


def run_cli(tmp_path, *extra):
    args = ["data", "describe", "--labels", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "d.csv")]
    return main([*args, "--api-key-env", "MY_KEY", "--retry-delay", "0", *extra])


def test_requests_retries_output_and_resume(tmp_path, env, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    write_labels(tmp_path / "labels.csv", ["wave", "brush_hair"])
    Endpoint.failures = [500, 429]
    assert run_cli(tmp_path) == 0
    assert len(Endpoint.calls) == 4  # 500 and 429 retried for the first class
    call = Endpoint.calls[0]
    assert call["path"] == "/v1/chat/completions" and call["auth"] == f"Bearer {KEY}"
    assert call["body"] == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "describe wave as an action performed by humans"}],
    }
    assert (
        Endpoint.calls[-1]["body"]["messages"][0]["content"] == "describe brush_hair as an action performed by humans"
    )
    lines = (tmp_path / "d.csv").read_text().splitlines()
    assert lines == [
        "id,name,description",
        "0,wave,A person is seen wave as an action performed by humans.",
        "1,brush_hair,A person is seen brush_hair as an action performed by humans.",
    ]
    assert read_descriptions(tmp_path / "d.csv")["brush hair"].startswith("A person")
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["described"] == 2

    # Resume: a new class list with one more class asks only for that one.
    write_labels(tmp_path / "labels.csv", ["wave", "brush_hair", "clap"])
    Endpoint.calls = []
    assert run_cli(tmp_path, "--template", "what does {} look like?") == 0
    assert [c["body"]["messages"][0]["content"] for c in Endpoint.calls] == ["what does clap look like?"]
    assert len((tmp_path / "d.csv").read_text().splitlines()) == 4
    Endpoint.calls = []
    assert run_cli(tmp_path) == 0 and Endpoint.calls == []  # everything done: no calls at all

    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err + caplog.text


def test_refusal_keeps_finished_classes_and_never_shows_the_key(tmp_path, env, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    write_labels(tmp_path / "labels.csv", ["wave", "refuse this", "clap"])
    assert run_cli(tmp_path) == 1
    captured = capsys.readouterr()
    assert "HTTP 401" in captured.err and "rerun to resume" in captured.err
    assert KEY not in captured.out + captured.err + caplog.text
    assert "<hidden>" in captured.err  # the server's echo of the key was redacted
    assert (tmp_path / "d.csv").read_text().splitlines()[1:] == [
        "0,wave,A person is seen wave as an action performed by humans."
    ]
    assert len(Endpoint.calls) == 2  # a 401 is not retried
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_gives_up_after_max_retries(tmp_path, env, capsys):
    write_labels(tmp_path / "labels.csv", ["wave"])
    Endpoint.failures = [503, 503, 503]
    assert run_cli(tmp_path, "--max-retries", "2") == 1
    assert len(Endpoint.calls) == 3 and "HTTP 503" in capsys.readouterr().err
    assert not (tmp_path / "d.csv").exists()


def test_connection_refused_is_retried_then_reported(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    port = httpd.server_address[1]
    httpd.server_close()
    endpoint = describe.Endpoint(f"http://127.0.0.1:{port}/v1", MODEL, KEY, timeout=5)
    assert KEY not in repr(endpoint)
    with pytest.raises(describe.DescribeError, match="127.0.0.1") as error:
        describe.describe(endpoint, "describe wave", max_retries=1, delay=0)
    assert KEY not in str(error.value)


def test_missing_model_is_a_one_line_error(tmp_path, env, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_MODEL")
    write_labels(tmp_path / "labels.csv", ["wave"])
    assert run_cli(tmp_path) == 2
    assert "no model" in capsys.readouterr().err


def test_a_reply_cut_mid_body_is_retried(tmp_path, env, capsys):
    write_labels(tmp_path / "labels.csv", ["wave"])
    Endpoint.failures = ["cut"]
    assert run_cli(tmp_path) == 0
    assert len(Endpoint.calls) == 2 and "A person is seen wave" in (tmp_path / "d.csv").read_text()


def test_a_trickling_server_meets_the_request_deadline(tmp_path, env, capsys):
    write_labels(tmp_path / "labels.csv", ["wave"])
    Endpoint.failures = ["trickle", "trickle"]
    started = time.monotonic()
    assert run_cli(tmp_path, "--timeout", "2", "--max-retries", "1") == 1
    assert time.monotonic() - started < 12  # two attempts of ~2 s each, not one byte per second for a minute
    err = capsys.readouterr().err
    assert "deadline" in err and "Traceback" not in err


def test_the_run_deadline_keeps_finished_classes(tmp_path, env, capsys):
    write_labels(tmp_path / "labels.csv", ["wave", "clap"])
    assert run_cli(tmp_path, "--deadline", "0") == 1
    assert "deadline passed after 0 of 2 classes" in capsys.readouterr().err
