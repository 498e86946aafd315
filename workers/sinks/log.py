"""One JSON line per event, on stdout or appended to a file: the sink `make run` shows at once."""

from __future__ import annotations

import sys

from workhooks.config.sinks import LogSink as LogSettings
from workhooks.core.events import Event
from workhooks.core.templates import Template


class LogSink:
    def __init__(self, settings: LogSettings) -> None:
        self.path = settings.path

    def send(self, event: Event, template: Template | None = None) -> None:
        line = event.to_json() + "\n"
        if self.path is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(line)
