"""Which process holds a run, and whether it still runs: a later run tells a killed one from a live one.

A process is named ``"host boot pid-namespace pid start-time"``: a run that ends without a chance to say so
(SIGKILL: an orchestrator's timeout, the out-of-memory killer) leaves this name behind, in its MLflow run's tags
(:mod:`jobs.runtime.tracking`) and in its run folder's marker (:mod:`jobs.runtime.runs`). The boot id and the pid
namespace keep containers that share a host name (host networking) and a rebooted machine from judging each
other's pids; the start time keeps a pid the system gave to a later process from passing for it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def identity(pid: int | None = None) -> str:
    """``"host boot pidns pid start"`` of process ``pid`` (default this one); ``start``: its start time in clock
    ticks since boot. Without Linux's ``/proc``, the fields it gives are "-" (such a process is never judged)."""
    pid = os.getpid() if pid is None else pid
    return " ".join([socket.gethostname(), *_system(), str(pid), _started(pid) or "-"])


def _system() -> list[str]:
    """This system's boot id and this process's pid namespace ("-" when unknown)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "-"
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "-"
    return [boot.replace(" ", "") or "-", namespace.replace(" ", "") or "-"]


def _started(pid: int) -> str | None:
    """Process ``pid``'s start time (``/proc/<pid>/stat`` field 22), None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # from field 3 (state), after the process name
    except FileNotFoundError:
        return None
    except OSError:  # hidden (/proc mounted with hidepid), unreadable: not known to be gone
        return "?"
    return None if len(fields) < 20 or fields[0] == "Z" else fields[19]


def _now(name: str | None) -> tuple[str, str | None] | None:
    """The start time ``name`` records and its pid's start time now, or None when ``name`` is not a process
    of this system (host, boot and pid namespace) that can be judged."""
    parts = (name or "").split()
    if len(parts) != 5 or "-" in parts or parts[:3] != [socket.gethostname(), *_system()] or not parts[3].isdigit():
        return None
    return parts[4], _started(int(parts[3]))


def alive(name: str | None) -> bool:
    """True only when ``name`` (:func:`identity`) is a process of this system that still runs (the same start)."""
    judged = _now(name)
    return judged is not None and judged[1] in (judged[0], "?")


def gone(name: str | None) -> bool:
    """True only when ``name`` (:func:`identity`) is a process of this system that no longer runs: its pid is
    gone, a zombie, or now another process's. Anything else (another host, no ``/proc``) is never judged."""
    judged = _now(name)
    return judged is not None and judged[1] not in (judged[0], "?")
