"""`make run`'s script: the local setup it leaves behind, and a Ctrl-C that stops everything.

The script runs from this checkout with the existing virtualenv, against a SQLite database and
a .env under a temporary directory (DATABASE_URL, ENV_FILE): var/ and a developer's own .env
are never touched.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)

# What a plain shell has: none of the variables the test settings set for this process.
TEST_ONLY = ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT", "ENV_FILE", "DATABASE_URL")


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY}
    env.update(extra)
    return env


def ensure_env(env_file: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "scripts/ensure_env.sh"],
        cwd=ROOT,
        env=plain_env(ENV_FILE=str(env_file), BIN=BIN, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def read_env(env_file: Path) -> dict[str, str]:
    lines = [line for line in env_file.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


# --- the .env -------------------------------------------------------------------------------


def test_first_run_writes_a_private_env_with_debug_and_a_generated_key(tmp_path):
    env_file = tmp_path / ".env"
    result = ensure_env(env_file)
    assert result.returncode == 0, result.stderr
    assert f"Wrote {env_file}" in result.stdout
    values = read_env(env_file)
    assert values["DEBUG"] == "true"
    assert len(values["SECRET_KEY"]) >= 50
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # Two checkouts never share a key.
    other = tmp_path / "other.env"
    ensure_env(other)
    assert read_env(other)["SECRET_KEY"] != values["SECRET_KEY"]


def test_an_existing_env_is_kept_as_it_is(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# mine\nDATABASE_URL=postgres://postgres@127.0.0.1:5432/mine\nSECRET_KEY=my-own-key\n")
    before = env_file.read_text()
    result = ensure_env(env_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert env_file.read_text() == before


def test_an_existing_env_without_a_key_gets_one_added(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=true\nQ_WORKERS=1")  # no final newline
    result = ensure_env(env_file)
    assert result.returncode == 0, result.stderr
    values = read_env(env_file)
    assert values["DEBUG"] == "true"
    assert values["Q_WORKERS"] == "1"
    assert len(values["SECRET_KEY"]) >= 50
    # ...but not when the environment provides the key.
    env_file.write_text("DEBUG=true\n")
    assert ensure_env(env_file, SECRET_KEY="from-the-environment").returncode == 0
    assert env_file.read_text() == "DEBUG=true\n"


# --- the running script ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(root: int) -> dict[int, str]:
    """Every process started under `root`, by pid, with its start time (pids get reused)."""
    parents: dict[int, int] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        started[int(entry.name)] = fields[19]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = started[pid]
                frontier.append(pid)
    return found


def alive(processes: dict[int, str]) -> list[str]:
    left = []
    for pid, started in processes.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields[19] == started and fields[0] != "Z":
            left.append(f"{pid} {cmdline}")
    return left


def get(url: str) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wait_for(predicate, seconds: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"run.sh exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"gave up waiting:\n{log.read_text()[-3000:]}")


@pytest.mark.live
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds leftover processes through /proc")
def test_make_run_serves_works_beside_manage_py_and_stops_entirely_on_ctrl_c(tmp_path):
    port = free_port()
    env_file = tmp_path / ".env"
    database = tmp_path / "switchyard.sqlite3"
    local = {"ENV_FILE": str(env_file), "DATABASE_URL": f"sqlite:///{database}"}
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        script = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=plain_env(BIN=BIN, PORT=str(port), Q_WORKERS="1", **local),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's Ctrl-C sees it
        )
    processes: dict[int, str] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(f"{base}/healthz")[0] == 200, 180, script, log)
        assert json.loads(get(f"{base}/healthz")[1]) == {"db": "ok", "queue": "ok"}
        status, _, headers = get(f"{base}/")
        assert (status, headers["Location"]) == (302, "/admin/")
        assert read_env(env_file)["DEBUG"] == "true"

        # The README's commands, beside the running server: no DEBUG or SECRET_KEY in the shell.
        created = subprocess.run(
            [f"{BIN}/python", "manage.py", "create_integration", "--kind", "segment", "--name", "Website"],
            cwd=ROOT,
            env=plain_env(**local),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)["api_key"]

        # The worker beside the web server applies what the web server stores.
        body = json.dumps({"userId": "run-1", "traits": {"email": "run-1@example.com"}}).encode()
        request = urllib.request.Request(
            f"{base}/v1/identify",
            data=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

        def applied() -> bool:
            with sqlite3.connect(database, timeout=20) as db:
                row = db.execute("SELECT status FROM integrations_inboxmessage WHERE user_id = 'run-1'").fetchone()
            return row is not None and row[0] == "processed"

        wait_for(applied, 120, script, log)

        # A second `make run` on the same port says so before it starts anything.
        second = subprocess.run(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=plain_env(BIN=BIN, PORT=str(port), **local),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0
        assert f"Port {port} is taken" in second.stderr

        processes = descendants(script.pid)
        commands = " | ".join(alive(processes))
        assert "runserver" in commands and "qcluster" in commands, commands
        os.killpg(script.pid, signal.SIGINT)
        script.wait(timeout=120)
        assert alive(processes) == []
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        output = log.read_text()
        assert "Traceback" not in output, output[-3000:]
        assert "killing the web server" not in output, output[-3000:]  # each stopped on its SIGINT
        assert "has stopped" in output  # django-q2's own clean stop
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
        for pid in processes:
            if alive({pid: processes[pid]}):
                os.kill(pid, signal.SIGKILL)
