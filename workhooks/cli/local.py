"""This folder's running service: where `workhooks up` left its receiver and Redis, for the other commands.

`up` writes ``var/up.json`` (its pid, the receiver's URL, the embedded Redis's URL) while it
runs; the embedded Redis keeps its own record in ``var/redis/`` (workhooks.store.embedded).
A command run in the same folder with no REDIS_URL uses that Redis, and `send` that receiver;
with neither set nor running it says so, rather than reading another database.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from workhooks.store import embedded

RECORD = Path("var") / "up.json"
PR_SET_PDEATHSIG = 1


def record(receiver: str, redis_url: str | None) -> Path:
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    temporary = RECORD.with_name(f".{RECORD.name}.{os.getpid()}")
    temporary.write_text(json.dumps({"pid": os.getpid(), "receiver": receiver, "redis": redis_url}))
    temporary.replace(RECORD)
    return RECORD


def forget() -> None:
    found = _read()
    if found is not None and found.get("pid") == os.getpid():
        RECORD.unlink(missing_ok=True)


def _read() -> dict[str, object] | None:
    try:
        found = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def alive(pid: int) -> bool:
    """A live process (not a zombie) with this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    return True


def running_up() -> dict[str, object] | None:
    """The record of a `workhooks up` running in this folder; a stale one (its pid gone) is removed."""
    found = _read()
    if found is None:
        return None
    pid = found.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and alive(pid):
        return found
    RECORD.unlink(missing_ok=True)
    return None


def receiver_url() -> str | None:
    found = running_up()
    value = None if found is None else found.get("receiver")
    return value if isinstance(value, str) else None


def redis_url() -> str | None:
    """The embedded Redis of this folder, if one answers."""
    return embedded.running(embedded.DEFAULT_DIRECTORY)


def where() -> str:
    return str(Path.cwd() / embedded.DEFAULT_DIRECTORY)


def die_with_parent() -> None:
    """A child's preexec_fn: SIGTERM when the process that started it dies, even by SIGKILL (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(entry.joinpath("stat").read_text().rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
