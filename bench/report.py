"""Where the benchmarks write their results: var/bench/<kind>-<time>.json (and plots beside them)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "var" / "bench"


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def write(kind: str, report: dict[str, Any], at: str | None = None) -> Path:
    """Write ``report`` as JSON, print where, and return the path."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{kind}-{at or stamp()}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written {path.relative_to(OUT.parent.parent)}")
    return path
