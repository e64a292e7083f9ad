"""A real Label Studio for the tests: installed from PyPI into its own venv, started on 127.0.0.1.

Label Studio pins many dependencies, so it lives in its own virtualenv, never the project's:
``~/.cache/lakelabel/label-studio-venv`` (:data:`REQUIREMENTS`: ``label-studio==1.23.2``, ``sentry-sdk<3``). When a collected test needs it,
the root conftest calls :func:`start_background` right after collection: a thread installs Label
Studio if no executable is found (``LAKELABEL_LABEL_STUDIO``, that venv, or ``PATH``) and starts the
server, so both overlap the tests that run before; the fixture waits for it. The install writes
``.lakelabel-installed`` (the requirements it installed) into the venv last, so a venv left half-installed by a
killed run, or installed for other requirements, is recognised and installed again. ``LAKELABEL_LABEL_STUDIO=skip`` skips those tests instead.

Under pytest-xdist the controller process does the same before it starts the workers (tests/conftest.py),
and exports :data:`SHARED_ENV`, the folder where its thread writes ``server.json`` (the server's address, or
the error); the worker that runs the test waits for that file.

The server runs with a temporary data folder and a fixed user token and is stopped by its pid
(its process group) when the session finishes.
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
from pathlib import Path

from tests import handoff

VERSION = "1.23.2"
# What the venv gets. Label Studio asks for sentry-sdk>=2.16 with no ceiling, and sentry-sdk 3 refuses the option
# Label Studio passes it (TypeError: Unknown option 'send_default_pii': the server exits at start).
REQUIREMENTS = (f"label-studio=={VERSION}", "sentry-sdk>=2.16,<3")
VENV = Path.home() / ".cache" / "lakelabel" / "label-studio-venv"
MARKER = VENV / ".lakelabel-installed"
INSTALL_LOG = VENV.parent / "label-studio-install.log"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
INSTALL_TIMEOUT = 1800
START_TIMEOUT = 600

# Label Studio asks pypi.org for its latest version when it starts, sends usage analytics, and may download
# resources for its export converters: none of it for a test server on 127.0.0.1 (its settings' switches).
QUIET = {"LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "CONVERTER_DOWNLOAD_RESOURCES": "false"}

#: Set by a pytest-xdist controller that started the server for its workers: the server's folder.
SHARED_ENV = "LAKELABEL_TEST_LABEL_STUDIO_FOLDER"

_install: subprocess.Popen | None = None
_background: dict = {}


def executable() -> str | None:
    """The label-studio executable to use, or None when it must be installed first."""
    given = os.environ.get("LAKELABEL_LABEL_STUDIO")
    if given and given != "skip":
        return given if Path(given).exists() else None
    if MARKER.exists() and MARKER.read_text().split() == list(REQUIREMENTS):  # else installed for other ones
        return str(VENV / "bin" / "label-studio")
    return shutil.which("label-studio")


def start_install() -> None:
    """Install Label Studio into :data:`VENV` in the background, unless it is there or was opted out."""
    global _install
    if _install is not None or os.environ.get("LAKELABEL_LABEL_STUDIO") or executable() is not None:
        return
    shutil.rmtree(VENV, ignore_errors=True)  # a venv without the marker is an interrupted install
    VENV.parent.mkdir(parents=True, exist_ok=True)
    pip = VENV / "bin" / "pip"
    # --no-compile: pip byte-compiles all of the venv's 815 MB (44.8 s of CPU against 31.6 s without, beside the
    # tests on 2 cores); Python compiles the modules the server imports when it first starts.
    wanted = " ".join(f'"{r}"' for r in REQUIREMENTS)
    script = (f'"{sys.executable}" -m venv "{VENV}" && "{pip}" install -q --disable-pip-version-check --no-compile '
              f'{wanted} && echo {" ".join(REQUIREMENTS)!r} > "{MARKER}"')  # fmt: skip
    with open(INSTALL_LOG, "w") as log:
        _install = subprocess.Popen(["/bin/sh", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip


def wait_for_install() -> str:
    """The executable, after waiting for the background install; AssertionError with pip's output if it failed."""
    start_install()  # no-op when it runs or ran (a pytest-xdist worker does not start it at collection)
    if _install is not None:
        try:
            _install.wait(timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(_install.pid, signal.SIGKILL)
            raise AssertionError(f"installing label-studio=={VERSION} took over {INSTALL_TIMEOUT} s") from None
    exe = executable()
    if exe is None:
        tail = INSTALL_LOG.read_text(errors="replace")[-2000:] if INSTALL_LOG.exists() else "(no install log)"
        raise AssertionError(f"label-studio=={VERSION} could not be installed into {VENV} (PyPI unreachable? set "
                             f"LAKELABEL_LABEL_STUDIO=skip to skip these tests): {tail}")  # fmt: skip
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_health(base: str, log_path: Path, exited=lambda: None):
    """Wait until the server at ``base`` answers /health; ``(base, session)`` with the user token set."""
    import requests

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = exited()
        if code is not None:
            raise AssertionError(f"label-studio exited with {code}: {log_path.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/health", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else "(no log)"
            raise AssertionError(f"label-studio did not answer /health within {START_TIMEOUT} s: {tail}")
        time.sleep(1)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {TOKEN}"
    return base, session


class Server:
    """A Label Studio server starting in the background; :meth:`wait` returns ``(base_url, session)``."""

    def __init__(self, exe: str, folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "label-studio.log"
        data = folder / "ls-data"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [exe, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port), "--data-dir",
             str(data), "--username", "annotator@example.com", "--password", "lakelabel-test-pass", "--user-token",
             TOKEN, "--enable-legacy-api-token"],
            stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), **QUIET},
            start_new_session=True,
        )  # fmt: skip

    def wait(self):
        return _wait_for_health(self.base, self.log_path, self.proc.poll)

    def stop(self) -> None:
        """Stop the server and the children it started, by its pid (process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class SharedServer:
    """In a pytest-xdist worker: the server the controller started; :meth:`wait` as :class:`Server`'s."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def wait(self):
        started = json.loads(handoff.wait_for(self.folder / "server.json", INSTALL_TIMEOUT + 60,
                                              "the test session's Label Studio did not start"))
        if "error" in started:
            raise AssertionError(started["error"])
        exited = self.folder / "exited"
        return _wait_for_health(started["base"], Path(started["log"]),
                                lambda: int(exited.read_text()) if exited.exists() else None)


def _install_and_start(folder: Path, shared: bool) -> None:
    try:
        _background["server"] = server = Server(wait_for_install(), folder)
        state = {"base": server.base, "log": str(server.log_path)}
    except BaseException as error:  # noqa: BLE001 - handed to the test that needs the server
        _background["error"] = error
        state = {"error": f"{type(error).__name__}: {error}"}
    handoff.write(folder / "server.json", json.dumps(state))
    if shared and "server" in _background:  # the workers learn that it exited (its exit code) from a file
        proc = _background["server"].proc
        threading.Thread(target=lambda: handoff.write(folder / "exited", str(proc.wait())), daemon=True).start()


def start_background(shared: bool = False) -> None:
    """Install (when needed) and start a server in a thread; :func:`background_server` waits for it.

    ``shared``: for a pytest-xdist controller; exports :data:`SHARED_ENV` for the workers it starts next."""
    if "thread" in _background or os.environ.get("LAKELABEL_LABEL_STUDIO") == "skip":
        return
    folder = Path(tempfile.mkdtemp(prefix="lakelabel-label-studio-"))
    _background["folder"] = folder
    if shared:
        os.environ[SHARED_ENV] = str(folder)
    _background["thread"] = threading.Thread(target=_install_and_start, args=(folder, shared), daemon=True)
    _background["thread"].start()


def background_server() -> Server | SharedServer:
    """The server :func:`start_background` started (starting it now when it did not run): in a pytest-xdist
    worker, the one its controller started when there is one."""
    if "thread" not in _background and os.environ.get(SHARED_ENV):
        return SharedServer(Path(os.environ[SHARED_ENV]))
    start_background()
    _background["thread"].join(INSTALL_TIMEOUT + 60)
    if "error" in _background:
        raise _background["error"]
    return _background["server"]


def stop_background() -> None:
    """Stop the background install and server, if any, and remove the server's data folder."""
    if _install is not None and _install.poll() is None:  # the session ended before the test (-x, -k)
        os.killpg(_install.pid, signal.SIGKILL)
    thread = _background.pop("thread", None)
    if thread is not None:
        thread.join(60)
    server = _background.pop("server", None)
    if server is not None:
        server.stop()
    _background.pop("error", None)
    folder = _background.pop("folder", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
