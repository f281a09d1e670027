"""A live Switchyard for the real client libraries, and the helpers that drive them.

The server is a separate gunicorn process on the test database, so a test can stop it (an
outage a client must ride out) and start it again on the same port. On SQLite the test
database lives in this process's memory, where no other process can reach it: there the
server is pytest-django's live server thread, and the outage test skips.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"
ANALYTICS_JS = NODE_MODULES / "@segment" / "analytics-next" / "dist" / "umd" / "index.js"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
NODE = shutil.which("node")


def node_package(name: str) -> Path:
    return NODE_MODULES.joinpath(*name.split("/"), "package.json")


def needs_node_package(name: str):
    """Skip marker for a test that drives an npm client library."""
    if NODE is None:
        return pytest.mark.skipif(True, reason="node is not installed; the Node client tests need it")
    return pytest.mark.skipif(
        not node_package(name).exists(), reason=f"{name} is not installed: run `make node-install` (npm ci)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings: dict) -> str | None:
    """The URL of the test database for another process, or None when it cannot reach it."""
    if settings["ENGINE"] != "django.db.backends.postgresql":
        return None
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "127.0.0.1"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(settings['NAME'], safe='')}"


class Switchyard:
    """A Switchyard server on a fixed port that can be stopped and started again."""

    def __init__(self, port: int, database: str | None) -> None:
        self.port = port
        self.database = database
        self.process: subprocess.Popen | None = None
        self.thread_server = None
        self.log = tempfile.NamedTemporaryFile(prefix="switchyard-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def restartable(self) -> bool:
        """Whether stop() takes the whole server away: only a separate process can be killed.

        A live server thread keeps serving the keep-alive connections it already has after its
        listening socket closes, so stopping it is no outage for a browser.
        """
        return self.database is not None

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.thread_server is not None

    def start(self) -> None:
        if self.running:
            return
        if self.database is None:
            self._start_thread()
        else:
            self._start_process()

    def _start_process(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
        env.update(DJANGO_SETTINGS_MODULE="config.settings_test", DATABASE_URL=self.database)
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--graceful-timeout",
            "2",
            "--log-level",
            "warning",
        ]
        # Its own process group, so stopping it ends the master and its worker together.
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.options(f"{self.url}/v1/track", timeout=2).status_code == 204:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer on {self.url}:\n{self.log_tail()}")

    def _start_thread(self) -> None:
        from pytest_django.live_server_helper import LiveServer

        self.thread_server = LiveServer(f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        """Take the server away at once, as a crash or a deploy would: the port refuses connections."""
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            self.process = None
        if self.thread_server is not None:
            # Not LiveServer.stop(): it makes the shared in-memory connection private to this
            # thread again, and a request thread still holding a client's keep-alive connection
            # (the Python libraries keep one) then fails when it closes at exit.
            self.thread_server.thread.terminate()
            self.thread_server = None

    def log_tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]


@pytest.fixture(scope="session")
def switchyard_server(django_db_setup, django_db_blocker):
    """One server for the session, on the test database (created by now)."""
    with django_db_blocker.unblock():
        settings = dict(connection.settings_dict)
    server = Switchyard(free_port(), database_url(settings))
    yield server
    server.stop()
    Path(server.log.name).unlink(missing_ok=True)


@pytest.fixture
def switchyard(switchyard_server, transactional_db):
    """The live server, running (a test that stopped it and failed leaves it stopped)."""
    switchyard_server.start()
    return switchyard_server


def orm(query):
    """Run an ORM query, then release the connection it took.

    While Playwright runs, its sync API switches greenlets and Django keeps connections per
    context: a connection left open here is one teardown never sees, and PostgreSQL would
    refuse to drop the test database.
    """
    try:
        return query()
    finally:
        connections.close_all()


def wait_for(check, *, seconds: float = 60, every: float = 0.25):
    """Poll `check` until it returns something truthy; return its last value either way.

    A bound, not a speed requirement: the caller asserts on what arrived.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


# --- Node ---------------------------------------------------------------------------------


def run_node(plan: dict) -> dict:
    """Run tests/clients/send.js with a plan of calls; it flushes, exits, and reports as JSON."""
    finished = subprocess.run(
        [NODE, str(HERE / "send.js")],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert finished.returncode == 0, (finished.returncode, finished.stdout, finished.stderr)
    return json.loads(finished.stdout.strip().splitlines()[-1])


# --- The page that loads analytics.js, from another origin ----------------------------------


class PageHandler(SimpleHTTPRequestHandler):
    """Serves the test page and the analytics.js bundle from node_modules; nothing else."""

    files = {
        "/": (HERE / "analytics.html", "text/html; charset=utf-8"),
        "/analytics-next.js": (ANALYTICS_JS, "text/javascript; charset=utf-8"),
    }

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path not in self.files:
            self.send_error(404)
            return
        file, content_type = self.files[path]
        body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def page_origin():
    """The shop's own origin: another port than Switchyard's, so every call is cross-origin."""
    if not ANALYTICS_JS.exists():
        pytest.skip("@segment/analytics-next is not installed: run `make node-install` (npm ci)")
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(PageHandler, directory=str(HERE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser(monkeypatch):
    """Headless Chromium for one test (each page gets a fresh profile from it)."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # The sync API runs an event loop in this thread; the test's ORM calls are still sync.
    # Scoped to the test: a leaked variable would fail `check --deploy` in later tests.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
