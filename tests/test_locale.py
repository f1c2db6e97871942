"""The pt_BR catalogs: every text translated, none left fuzzy, and the committed .mo compiled from
the committed .po (a fresh machine needs no gettext tools)."""

import gettext
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = [
    ROOT / app / "locale/pt_BR/LC_MESSAGES/django.po" for app in ("conversations", "crm_gateway")
]


def unquote(chunk: str) -> str:
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', chunk)
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), "".join(parts))


def entries(po: Path) -> dict[str, str]:
    text = po.read_text()
    found = re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', text, flags=re.M)
    return {unquote(msgid): unquote(msgstr) for msgid, msgstr in found if unquote(msgid)}


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parts[-5])
def test_it_translates_every_text_and_leaves_none_fuzzy(po):
    assert "#, fuzzy" not in po.read_text()
    untranslated = [msgid for msgid, msgstr in entries(po).items() if not msgstr]
    assert untranslated == []


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
