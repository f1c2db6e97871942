"""Start the real supportbot processes for end-to-end tests, and always stop them.

    with ProcessSet() as procs:
        web = procs.serve(env)            # manage.py serve --port 0, waits until it answers
        worker = procs.runworker(env)     # manage.py runworker supportbot-inbound
        worker.kill()                     # kill -9
    # leaving the block kills whatever is still running

Each process writes stdout and stderr to a log file; a failing test shows the tail of every log.
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from conversations.events import INBOUND_CHANNEL
from tests.fakes.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVE_URL = re.compile(r"supportbot is running at (http://\S+?)/? ")
WORKER_READY = re.compile(r"Running worker for channels")
# Variables a developer's shell may hold that must not leak into the processes under test.
SCRUBBED = (
    "DATABASE_URL",
    "REDIS_URL",
    "SUPPORTBOT_TEST_DATABASE_NAME",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "CRM_BASE_URL",
    "CRM_API_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_API_BASE_URL",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "DJANGO_SETTINGS_MODULE",
)


def database_url_named(url: str, name: str) -> str:
    """`url` pointing at database `name` (the test run's database, not the one in the URL)."""
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def wait_until(condition, *, timeout: float = 20.0, what: str = "condition"):
    """Poll `condition()` until it returns something truthy (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout} s (last: {result!r})")
        time.sleep(0.05)


def live_env(database_url: str, redis_url: str, **values: str) -> dict[str, str]:
    """Environment for processes sharing this test run's PostgreSQL database and Redis db.

    pytest-django runs the tests on a test database (test_ prefix or SUPPORTBOT_TEST_DATABASE_NAME),
    not the one DATABASE_URL names: the processes must see the rows the test sees.
    """
    from django.db import connection

    name = connection.settings_dict["NAME"]
    return process_env(
        DATABASE_URL=database_url_named(database_url, name), REDIS_URL=redis_url, **values
    )


def tune_runtime(**values) -> None:
    """Save the runtime settings row the processes read (short debounce by default)."""
    from conversations.models import RuntimeSettings

    values = {"debounce_quiet_ms": 300, "debounce_max_wait_ms": 1500, **values}
    RuntimeSettings.objects.update_or_create(pk=1, defaults=values)


def process_env(**values: str) -> dict[str, str]:
    """This environment without supportbot's variables, plus `values` (None values dropped)."""
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SECRET_KEY": "e2e-tests-only",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update({name: value for name, value in values.items() if value is not None})
    return env


def sqlite_copy(migrated: Path, folder: Path, name: str = "db.sqlite3") -> str:
    """A DATABASE_URL for a copy of the migrated file (the conftest's migrated_sqlite_file)."""
    database = folder / name
    shutil.copyfile(migrated, database)
    return f"sqlite:///{database}"


def _prepare_child() -> None:
    """SIGINT as at a terminal: a test run started in the background (`make test &`, some CI
    runners) ignores SIGINT, children inherit that, and Twisted then leaves SIGINT ignored, so a
    test's Ctrl-C would not reach `serve`. And on Linux: SIGKILL the child when pytest dies, even
    by kill -9 (no teardown runs then)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"supportbot-{name}-", suffix=".log")[1])
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C does not reach it; we stop it ourselves
                preexec_fn=_prepare_child,
            )
        self.url = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, pattern: re.Pattern, timeout: float = 30.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.output())
            if match:
                return match
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: no {pattern.pattern!r} in {timeout} s:\n{self.tail()}"
                )
            time.sleep(0.05)

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        """Wait until GET `url` answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: {url} not answering in {timeout} s:\n{self.tail()}"
                )
            time.sleep(0.05)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`. Returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()

    def kill(self) -> int:
        """kill -9: no cleanup runs in the process."""
        if self.alive():
            self.popen.kill()
        return self.popen.wait(10)

    def tail(self, lines: int = 400) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class ProcessSet:
    """Every process started through it is killed when the block exits, whatever happened."""

    def __init__(self):
        self.processes: list[ManagedProcess] = []

    def __enter__(self) -> "ProcessSet":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
        # pytest shows captured stderr only when a test failed: then these logs explain why.
        for process in self.processes:
            sys.stderr.write(
                f"\n----- {process.name} (pid {process.pid}) -----\n{process.tail()}\n"
            )
            process.log_path.unlink(missing_ok=True)

    def stop_all(self) -> None:
        for process in self.processes:
            try:
                process.terminate(timeout=5)
            except Exception:  # still make sure the others stop
                process.popen.kill()

    def start(self, name: str, args: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, args, env)
        self.processes.append(process)
        return process

    def serve(
        self, env: dict[str, str], name: str = "serve", timeout: float = 30.0
    ) -> ManagedProcess:
        """`manage.py serve` on a free port; returns once it answers HTTP (its URL in `.url`)."""
        process = self.start(
            name,
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", "0"],
            env,
        )
        process.url = process.wait_for_output(SERVE_URL, timeout).group(1)
        process.wait_http(f"{process.url}/healthz", timeout)
        return process

    def daphne(
        self, env: dict[str, str], name: str = "daphne", timeout: float = 30.0
    ) -> ManagedProcess:
        """`daphne supportbot.asgi:application` on a free port; returns once it answers HTTP."""
        port = free_port()
        process = self.start(
            name,
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "supportbot.asgi:application",
            ],
            env,
        )
        process.url = f"http://127.0.0.1:{port}"
        process.wait_http(f"{process.url}/healthz", timeout)
        return process

    def runworker(
        self, env: dict[str, str], name: str = "worker", timeout: float = 30.0
    ) -> ManagedProcess:
        """`manage.py runworker supportbot-inbound`; returns once it listens on the channel."""
        process = self.start(name, [sys.executable, "manage.py", "runworker", INBOUND_CHANNEL], env)
        process.wait_for_output(WORKER_READY, timeout)
        return process
