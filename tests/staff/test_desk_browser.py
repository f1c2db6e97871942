"""The staff desk in a real browser: Debian's Chromium driven by Playwright against a real
`manage.py serve` (embedded mode, its own SQLite file) on the fake Cloud API, with a fake
Responses API that fails, so the assistant hands the customer over as it does in production.

Set DESK_SCREENSHOTS=<dir> to save the inbox and the pane as PNGs (`make screenshots`)."""

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.fakes.cloud_api import FakeCloudAPI, deliver, text_webhook
from tests.fakes.processes import ProcessSet, process_env
from tests.fakes.responses_api import FakeResponsesAPI

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CUSTOMER = "5511987654321"
PASSWORD = "browser-test-password"  # a throwaway login on a throwaway database
SETUP = f"""
from django.contrib.auth.models import Group, User
from conversations.models import CannedReply, RuntimeSettings
ana = User.objects.create_user("ana", password="{PASSWORD}", is_staff=True)
ana.groups.add(Group.objects.get(name="Atendimento"))
RuntimeSettings.objects.update_or_create(
    pk=1, defaults={{"debounce_quiet_ms": 100, "debounce_max_wait_ms": 500}}
)
CannedReply.objects.create(shortcut="boleto", text="Oi {{nome}}, a 2ª via do boleto segue.")
"""


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    unavailable(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it in .ci/run)")


@pytest.fixture
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def platform(tmp_path):
    """serve + fake Cloud API + a failing model; yields (url, cloud, database file)."""
    database = tmp_path / "desk.sqlite3"
    with (
        FakeCloudAPI() as cloud,
        FakeResponsesAPI(reply="nunca", fail_times=1000, fail_status=400) as model,
        ProcessSet() as procs,
    ):
        env = process_env(
            DATABASE_URL=f"sqlite:///{database}",
            DJANGO_DEBUG="true",  # as `make run`: serve also serves the admin's static files
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=model.url,
            **cloud.env(),
        )
        for name, args in [
            ("migrate", ["migrate", "--no-input"]),
            ("setup", ["shell", "-c", SETUP]),
        ]:
            step = procs.start(name, [sys.executable, "manage.py", *args], env)
            assert step.popen.wait(90) == 0, step.tail()
        web = procs.serve(env)
        yield web.url, cloud, database


def rows(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute(sql).fetchall()


def screenshot(page, name: str) -> None:
    folder = os.environ.get("DESK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_a_handoff_arrives_live_and_staff_assign_reply_note_and_resolve(browser, platform):
    from playwright.sync_api import expect

    url, cloud, database = platform
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="pt-BR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}/admin/login/?next=/admin/inbox/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#desk-live")).to_have_attribute("data-state", "live")
    waiting = page.locator("[data-queue=waiting] .desk-row")
    expect(waiting).to_have_count(0)

    # Staff look at another window (headless pages never lose focus: the test takes it away).
    page.evaluate("() => { document.hasFocus = () => false; }")

    # The customer writes; the model fails; the assistant hands over: it appears without reload,
    # and the page's title counts it while staff look elsewhere.
    deliver(url, text_webhook(wa_id=CUSTOMER, wamid="wamid.browser-1", text="minha internet caiu"))
    expect(waiting).to_have_count(1)
    expect(page.locator("[data-count=waiting]")).to_have_text("1")
    expect(page).to_have_title("(1) Caixa de entrada | supportbot")
    page.evaluate("() => { delete document.hasFocus; window.dispatchEvent(new Event('focus')); }")
    expect(page).to_have_title("Caixa de entrada | supportbot")  # seen
    cloud.wait_for_texts(lambda texts: len(texts) == 1)  # the fallback reply
    screenshot(page, "inbox")

    waiting.first.locator("a").click()
    expect(page.locator(".bubble.customer")).to_contain_text("minha internet caiu")
    page.click("button[data-action=assign_me]")
    expect(page.locator(".desk-badge.assigned")).to_contain_text("ana")
    expect(page.locator("[data-queue=mine] .desk-row")).to_have_count(1)

    # A canned reply picked with /, sent with Enter: it reaches the Cloud API.
    text = page.locator("#desk-text")
    text.fill("/bol")
    expect(page.locator("#desk-canned li")).to_have_count(1)
    text.press("Enter")
    expect(text).to_have_value("Oi Cliente, a 2ª via do boleto segue.")
    text.press("Shift+Enter")
    text.type("Qualquer dúvida, estou aqui.")
    text.press("Enter")
    sent = cloud.wait_for_texts(lambda texts: len(texts) == 2)
    assert sent[1].body == "Oi Cliente, a 2ª via do boleto segue.\nQualquer dúvida, estou aqui."
    assert sent[1].to == CUSTOMER
    expect(page.locator(".bubble.staff")).to_contain_text("Qualquer dúvida")

    # A private note: shown in yellow, never sent.
    page.check("input[name=mode][value=note]")
    text.fill("Cliente pediu retorno às 18h")
    text.press("Enter")
    note = page.locator(".bubble.note")
    expect(note).to_contain_text("Cliente pediu retorno às 18h")
    # to_have_css retries: a live update may re-render the transcript under a one-shot evaluate.
    expect(note).to_have_css("background-color", "rgb(254, 240, 138)")
    assert len(cloud.texts()) == 2

    # The customer writes again while staff type: the message arrives live in the open pane,
    # and the draft, its mode and the focus survive the pane's reload.
    text.type("rascunho da nota")
    deliver(url, text_webhook(wa_id=CUSTOMER, wamid="wamid.browser-2", text="obrigado!"))
    expect(page.locator(".bubble.customer").last).to_contain_text("obrigado!")
    expect(text).to_have_value("rascunho da nota")
    expect(page.locator("input[name=mode][value=note]")).to_be_checked()
    expect(text).to_be_focused()
    text.fill("")

    # The socket drops; a message arrives meanwhile; the page reconnects and catches up.
    page.evaluate("""() => {
        const desk = document.getElementById("desk");
        desk.reconnect = desk.socket.onclose;
        desk.socket.onclose = null;  // no reconnect yet: the message below is missed live
        desk.socket.close();
    }""")
    deliver(url, text_webhook(wa_id=CUSTOMER, wamid="wamid.browser-3", text="ainda aí?"))
    page.wait_for_timeout(300)
    expect(page.locator(".bubble.customer").last).to_contain_text("obrigado!")
    page.evaluate("""() => document.getElementById("desk").reconnect()""")
    expect(page.locator(".bubble.customer").last).to_contain_text("ainda aí?")
    expect(page.locator("#desk-live")).to_have_attribute("data-state", "live")
    page.check("input[name=mode][value=reply]")
    expect(page.locator("#desk-window")).to_contain_text("A janela fecha em 23h59m")
    screenshot(page, "conversation")

    page.click("button[data-action=resolve]")
    expect(page.locator(".desk-badge.resolved")).to_be_visible()
    expect(page.locator("[data-count=resolved]")).to_have_text("1")
    assert rows(
        database, "SELECT status, closed_by_id IS NOT NULL FROM conversations_conversation"
    )[0] == ("closed", 1)
    assert len(cloud.texts()) == 2  # nothing else went to the customer
