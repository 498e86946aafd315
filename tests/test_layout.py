"""The layout's promises, checked: one module spells every Redis key and RQ job path."""

from __future__ import annotations

import ast
from pathlib import Path

from workhooks.store import keys

ROOT = Path(__file__).resolve().parent.parent
KEYS_MODULE = ROOT / "workhooks" / "store" / "keys.py"
JOB_PATHS = (keys.DRAIN_INBOX, keys.PROCESS_EVENT, keys.DELIVER, keys.POLL_SOURCE, keys.CHECK_ACCOUNT)
RQ_PREFIX = "rq:"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _spelled_keys(path: Path) -> list[str]:
    """String literals (f-string parts included, docstrings not) that spell a key or a job path."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if text.startswith((keys.PREFIX, RQ_PREFIX)) or text in JOB_PATHS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    return found


def test_only_the_keys_module_spells_redis_keys_and_job_paths() -> None:
    sources = [path for folder in ("receiver", "workers", "workhooks", "tests", "bench") for path in
               (ROOT / folder).rglob("*.py") if path not in (KEYS_MODULE, Path(__file__).resolve())]  # fmt: skip
    assert len(sources) > 50
    assert [spelled for path in sources for spelled in _spelled_keys(path)] == []


def test_the_keys_module_spells_every_family_it_owns() -> None:
    assert _spelled_keys(KEYS_MODULE)  # the check above would notice a literal anywhere else
