"""Instructions per request, receiver vs the bare Starlette 202: a cost figure that does not move with the VM.

bench/ingest.py's requests/s on this shared 2-core VM move by up to 2x within an hour, and its ratio
by ±0.03 between runs of the same code, too much to see a 5% change. This counts the CPU instructions
each server executes per request instead, under valgrind's callgrind (repeatable to ~0.5% between
runs): the server is started under callgrind with counting off, warmed with wrk, then counted over
``--seconds`` of wrk load (bench/ingest.lua: a distinct Wordy or Shared Workforce callback per
request), and its instruction total divided by the requests wrk saw answered. Both servers run as
bench/ingest.py runs them (the receiver as ``workhooks serve``, default log level, failure limiter on,
a private redis-server), one at a time; callgrind is ~50x slower, so wrk uses 8 connections.

    python bench/instructions.py                  # both servers, 15 s each; needs valgrind and wrk
    python bench/instructions.py --only receiver  # e.g. to compare two codes: PYTHONPATH=<snapshot> ...

The instruction ratio (bare's instructions per request / the receiver's) counts user-space instructions
only: not the kernel's share (the sockets, about alike per request for both), nor what Redis and wrk
take beside the receiver; it is near what the throughput ratio would be if each server had its core
to itself. Writes var/bench/instructions-<time>.json.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench.ingest import BIN, find_wrk, free_port, receiver_env, serve, wrk_round  # noqa: E402
from workhooks.store import embedded  # noqa: E402

# The receiver as the `workhooks` script runs it, through this interpreter (callgrind follows the one process).
BARE = ["-m", "uvicorn", "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1", "bench.bare_app:app"]
COMMANDS = {
    "baseline": [*BARE, "--port"],
    "receiver": ["-c", "import sys; from workhooks.cli import main; sys.exit(main())", "serve", "--port"],
}


def control(pid: int, *words: str) -> None:
    """Tell a process running under callgrind to count (``-i on``), stop counting, or write what it counted."""
    subprocess.run(["callgrind_control", *words, str(pid)], check=True, capture_output=True, timeout=60)  # noqa: S607 - valgrind's, on PATH


def counted(name: str, wrk: str, seconds: float, env: dict[str, str], folder: Path) -> dict[str, Any]:
    port, out = free_port(), folder / f"{name}.callgrind"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
               str(BIN / "python"), *COMMANDS[name], str(port)]  # fmt: skip
    # the receiver away from this checkout, so that PYTHONPATH (another code's snapshot) comes first for it
    process = serve(command, env, port, cwd=ROOT if name == "baseline" else folder, wait=300)  # ~30 s to start
    try:
        wrk_round(wrk, port, 8, 3, 1, "both")  # warm: imports, caches, the script loaded
        control(process.pid, "-i", "on")
        found = wrk_round(wrk, port, 8, seconds, 10**9, "both")
        control(process.pid, "-i", "off")
        control(process.pid, "-d")
        for _ in range(120):  # the dump is written when the server next looks at its commands
            if any(folder.glob(f"{name}.callgrind*")):
                break
            time.sleep(0.5)
        time.sleep(1)
    finally:  # (uvicorn ends on SIGTERM by raising it again: callgrind's own dump at exit is not to be relied on)
        process.terminate()
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
    instructions = 0  # the dump holds what was counted; one at exit, if any, what came after it (nothing)
    for dump in folder.glob(f"{name}.callgrind*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                instructions = max(instructions, int(line.split()[1]))
    answered = found["requests"] - found["non_2xx_3xx"]
    return {
        "requests": found["requests"],
        "non_2xx": found["non_2xx_3xx"],
        "instructions": instructions,
        "instructions_per_request": instructions / max(1, answered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--only", choices=tuple(COMMANDS))
    args = parser.parse_args()
    wrk, generator = find_wrk()
    if wrk is None or shutil.which("valgrind") is None:
        raise SystemExit(f"needs valgrind (apt-get install valgrind) and wrk: {generator}")
    names = [args.only] if args.only else list(COMMANDS)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        server = embedded.start(folder / "redis")
        env = receiver_env(folder, server.url)
        try:
            for each in names:
                found = figures[each] = counted(each, wrk, args.seconds, env, folder)
                print(f"{each:<9} {found['instructions_per_request']:>12,.0f} instructions/request "
                      f"({found['requests']} requests, {found['non_2xx']} non-2xx)", flush=True)  # fmt: skip
        finally:
            server.stop()
    if len(figures) == 2 and all(figures[each]["instructions"] for each in names):
        ratio = figures["baseline"]["instructions_per_request"] / figures["receiver"]["instructions_per_request"]
        figures["instruction_ratio"] = ratio
        print(f"instruction ratio (bare / receiver): {ratio:.3f}")
    report_file.write("instructions", {"load_generator": generator, "seconds": args.seconds, "servers": figures})


if __name__ == "__main__":
    main()
