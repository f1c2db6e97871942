import pytest

from supportbot.checks import check_deployment_mode

SQLITE = "django.db.backends.sqlite3"
POSTGRES = "django.db.backends.postgresql"


@pytest.fixture
def mode(settings, monkeypatch):
    """Set DEBUG, embedded mode and the database engine for one check run."""

    def set_mode(*, debug: bool, embedded: bool, engine: str) -> None:
        settings.DEBUG, settings.EMBEDDED = debug, embedded
        monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", engine)

    return set_mode


def ids() -> set[str]:
    return {problem.id for problem in check_deployment_mode(None)}


def test_it_warns_when_debug_is_off_with_in_process_redis(settings, mode):
    mode(debug=False, embedded=True, engine=POSTGRES)
    problems = check_deployment_mode(None)
    assert [p.id for p in problems] == ["supportbot.W001"]
    assert "REDIS_URL" in problems[0].hint


def test_it_warns_without_an_app_secret_outside_embedded_mode(settings, mode):
    mode(debug=False, embedded=False, engine=POSTGRES)
    settings.WHATSAPP_APP_SECRET, settings.WHATSAPP_VERIFY_TOKEN = "", "token"
    assert ids() == {"supportbot.W002"}


def test_it_warns_without_a_verify_token_outside_embedded_mode(settings, mode):
    mode(debug=False, embedded=False, engine=POSTGRES)
    settings.WHATSAPP_APP_SECRET, settings.WHATSAPP_VERIFY_TOKEN = "secret", ""
    assert ids() == {"supportbot.W003"}


def test_it_warns_when_debug_is_off_on_sqlite(settings, mode):
    mode(debug=False, embedded=False, engine=SQLITE)
    settings.WHATSAPP_APP_SECRET, settings.WHATSAPP_VERIFY_TOKEN = "secret", "token"
    assert ids() == {"supportbot.W004"}


def test_it_is_quiet_for_a_complete_production_setup(settings, mode):
    mode(debug=False, embedded=False, engine=POSTGRES)
    settings.WHATSAPP_APP_SECRET, settings.WHATSAPP_VERIFY_TOKEN = "secret", "token"
    assert check_deployment_mode(None) == []


def test_it_is_quiet_in_embedded_development(settings, mode):
    mode(debug=True, embedded=True, engine=SQLITE)
    assert check_deployment_mode(None) == []
