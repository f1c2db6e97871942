"""The pt_BR catalogs: every text translated, none left fuzzy, and the committed .mo compiled from
the committed .po (a fresh machine needs no gettext tools)."""

import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = [
    ROOT / app / "locale/pt_BR/LC_MESSAGES/django.po" for app in ("conversations", "crm_gateway")
]


def unquote(chunk: str) -> str:
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', chunk)
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), "".join(parts))


def entries(po: Path) -> dict[str, str]:
    return entries_text(po.read_text())


def entries_text(text: str) -> dict[str, str]:
    found = re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', text, flags=re.M)
    return {unquote(msgid): unquote(msgstr) for msgid, msgstr in found if unquote(msgid)}


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-5])
def test_it_translates_every_text_and_leaves_none_fuzzy(po):
    assert "#, fuzzy" not in po.read_text()
    untranslated = [msgid for msgid, msgstr in entries(po).items() if not msgstr]
    assert untranslated == []
    assert untranslated_plurals(po.read_text()) == []


def untranslated_plurals(text: str) -> list[str]:
    blocks = re.findall(r'^msgid_plural ((?:".*"\n)+)((?:msgstr\[\d\] (?:".*"\n)+)+)', text, re.M)
    return [
        unquote(plural)
        for plural, forms in blocks
        if any(not unquote(form) for form in re.split(r"^msgstr\[\d\] ", forms, flags=re.M)[1:])
    ]


def test_it_finds_an_untranslated_plural():
    po = 'msgid "%(n)s customer"\nmsgid_plural "%(n)s customers"\nmsgstr[0] "x"\nmsgstr[1] ""\n'
    assert untranslated_plurals(po) == ["%(n)s customers"]
    assert untranslated_plurals(po.replace('[1] ""', '[1] "y"')) == []


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-5])
def test_every_text_in_the_code_is_in_the_catalog(po, tmp_path):
    """makemessages over a copy of the app: a text added to the code without its translation
    would show in English on the Portuguese admin."""
    if not shutil.which("xgettext"):
        unavailable("xgettext is missing: apt-get install gettext (CI installs it in .ci/run)")
    app = po.parents[3]
    copy = tmp_path / app.name
    shutil.copytree(app, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "makemessages", "-l", "pt_BR"],
        cwd=copy,
        check=True,
        capture_output=True,
    )
    fresh = (copy / po.relative_to(app)).read_text()
    missing = [msgid for msgid, msgstr in entries_text(fresh).items() if not msgstr]
    assert missing == [], "run makemessages and translate these"
    assert untranslated_plurals(fresh) == []


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-5])
def test_the_committed_mo_matches_the_po(po):
    with po.with_suffix(".mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for msgid, msgstr in entries(po).items():
        assert compiled.gettext(msgid) == msgstr, msgid


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-5])
def test_no_translation_repeats_itself(po):
    # A merge that appended a translation to the old one instead of replacing it.
    repeated = [s for s in entries(po).values() if len(s) > 30 and s.count(s[:30]) > 1]
    assert repeated == []
