"""One JSON line per event, on stdout or appended to a file: the sink `make run` shows at once."""

from __future__ import annotations

import re
import sys
import threading

from workhooks.config.sinks import LogSink as LogSettings
from workhooks.core.events import Event
from workhooks.core.templates import Template

# JSON leaves these raw, but they end a line for some readers (U+0085, U+2028, U+2029) or drive a
# terminal (DEL and the C1 controls, U+009B being CSI), or reorder what is shown (bidi controls).
# Outside strings the line is ASCII, so each can be written as its \uXXXX escape: the same JSON.
WRITING = threading.Lock()
UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def escape(line: str) -> str:
    return UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", line)


class LogSink:
    def __init__(self, settings: LogSettings, name: str = "") -> None:
        self.name = name
        self.path = settings.path

    def send(self, event: Event, template: Template | None = None) -> None:
        line = escape(event.to_json()) + "\n"
        if self.path is None:
            with WRITING:  # sending threads, and the log lines of this process: a whole line in one write
                stream = getattr(sys.stdout, "buffer", None)
                if stream is not None:
                    sys.stdout.flush()
                    stream.write(line.encode())
                    stream.flush()
                else:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            return
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(line)
