"""The rooms of conversations/ and crm_gateway/ import only downwards (each package's docstring
says what it may import), so no two packages import each other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = "conversations"  # the base modules directly in conversations/
# package -> the packages it may import (besides itself and third-party code)
ALLOWED = {
    BASE: set(),
    "conversations.whatsapp": {BASE},
    "conversations.assistant": {BASE, "crm_gateway"},
    "crm_gateway": {BASE},
    "conversations.privacy": {BASE, "conversations.whatsapp", "crm_gateway"},
    "conversations.engine": {
        BASE,
        "conversations.whatsapp",
        "conversations.assistant",
        "conversations.privacy",
        "crm_gateway",
    },
    "conversations.webhook": {
        BASE,
        "conversations.whatsapp",
        "conversations.engine",
        "conversations.privacy",
    },
    "conversations.staff": {
        BASE,
        "conversations.whatsapp",
        "conversations.assistant",
        "conversations.engine",
        "conversations.webhook",
        "conversations.privacy",
        "crm_gateway",
    },
}
ENTRY_POINTS = {"admin.py", "urls.py", "routing.py", "apps.py"}  # Django's wiring may import any


def package_of(dotted: str) -> str | None:
    for name in sorted(ALLOWED, key=len, reverse=True):
        if name != BASE and (dotted == name or dotted.startswith(name + ".")):
            return name
    return BASE if dotted == BASE or dotted.startswith(BASE + ".") else None


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def source_files():
    for top in ("conversations", "crm_gateway"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts or "management" in parts:
                continue
            if len(parts) == 2 and parts[0] == BASE and parts[1] in ENTRY_POINTS:
                continue
            yield path


@pytest.mark.parametrize("path", list(source_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_it_imports_only_downwards(path):
    dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    own = package_of(dotted)
    bad = set()
    for name in imported_modules(path):
        target = package_of(name)
        if target is None or target == own:
            continue
        if target not in ALLOWED[own]:
            bad.add(name)
    assert not bad, f"{dotted} ({own}) may not import {sorted(bad)}"


def test_every_package_says_what_it_owns_and_may_import():
    for package in ALLOWED:
        init = ROOT / package.replace(".", "/") / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init} has no docstring saying what it may import"


def test_modules_stay_small():
    big = {
        str(path.relative_to(ROOT)): n
        for path in source_files()
        if (n := len(path.read_text().splitlines())) > 320
    }
    assert not big, f"modules over ~300 lines: {big}"
