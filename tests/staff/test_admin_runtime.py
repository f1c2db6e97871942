import pytest
from django import forms
from django.contrib.admin.models import CHANGE, LogEntry
from django.forms.models import model_to_dict
from django.urls import reverse

from conversations import defaults
from conversations.models import RuntimeSettings
from conversations.runtime import get_or_create_settings_row, get_runtime, reset_runtime_cache

pytestmark = pytest.mark.django_db

FIELDSETS = (
    "Cache do CRM",
    "Trava da conversa",
    "Turnos",
    "Assistente",
    "Áudios e fotos",
    "Ferramentas e transferência",
    "Textos",
    "Painel",
    "Retenção (LGPD)",
    "Atendimento",
)


@pytest.fixture(autouse=True)
def _fresh_runtime():
    reset_runtime_cache()
    yield
    reset_runtime_cache()


@pytest.fixture
def row():
    return get_or_create_settings_row()


def change_url(row) -> str:
    return reverse("admin:conversations_runtimesettings_change", args=[row.pk])


def form_data(row, **changes) -> dict:
    data = model_to_dict(row, exclude=["id", "updated_at"])
    data.update(changes)
    # An unticked checkbox is simply absent from a POST.
    if data.pop("supersede_enabled"):
        data["supersede_enabled"] = "on"
    return data


def saved_values(row) -> dict:
    return model_to_dict(RuntimeSettings.objects.get(pk=row.pk))


def test_it_sends_the_list_straight_to_the_one_row(admin_client):
    response = admin_client.get(reverse("admin:conversations_runtimesettings_changelist"))
    row = RuntimeSettings.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(row)
    admin_client.get(reverse("admin:conversations_runtimesettings_changelist"))
    assert RuntimeSettings.objects.count() == 1


def test_it_renders_the_page_with_fieldsets_and_help(admin_client, row, settings):
    settings.OPENAI_MODEL = "gpt-env-model"
    response = admin_client.get(change_url(row))
    assert response.status_code == 200
    page = response.content.decode()
    for title in FIELDSETS:
        assert f">{title}<" in page
    assert "renova a cada terço deste tempo" in page  # a help text in plain language
    assert "gpt-env-model" in page  # what a blank model means today
    assert "Aviso importante" in page  # the default texts are there to edit


def test_it_refuses_to_add_a_second_row(admin_client, row):
    response = admin_client.get(reverse("admin:conversations_runtimesettings_add"))
    assert response.status_code == 403


def test_it_offers_the_add_page_only_while_no_row_exists(admin_client):
    response = admin_client.get(reverse("admin:conversations_runtimesettings_add"))
    assert response.status_code == 200


def test_it_refuses_to_delete_the_row(admin_client, row):
    response = admin_client.post(
        reverse("admin:conversations_runtimesettings_delete", args=[row.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert RuntimeSettings.objects.filter(pk=row.pk).exists()


def test_it_keeps_the_page_from_non_staff(client, row):
    response = client.get(change_url(row))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lock_ttl_seconds": 0}, "Must be at least 10 s."),
        ({"crm_cache_ttl_seconds": 0}, "Must be at least 1 s."),
        ({"history_window_messages": 0}, "Must be at least 1."),
        ({"debounce_quiet_ms": 0}, "Must be at least 100 ms."),
        ({"lock_wait_timeout_seconds": -5}, "Must be at least 1 s."),
        ({"backoff_base_ms": -1}, "Must be at least 10 ms."),
        ({"crm_cache_ttl_seconds": 10**9}, "Must be at most 86400 s; a larger value is almost"),
        ({"llm_timeout_seconds": 6000}, "Must be at most 600 s"),
        ({"lock_wait_timeout_seconds": 3601}, "Must be at most 600 s"),
        ({"history_window_messages": 201}, "Must be at most 200"),
        ({"supersede_cap": 11}, "Must be at most 10"),
        ({"lock_ttl_seconds": 5}, "Must be at least 10 s."),
        (
            {"backoff_base_ms": 3000, "backoff_cap_ms": 2000},
            "The backoff cap must be at least the backoff base (3000 ms).",
        ),
        (
            {"lock_wait_timeout_seconds": 1, "backoff_cap_ms": 2000},
            "The backoff cap must not be longer than the lock wait timeout (1 s).",
        ),
        (
            {"debounce_quiet_ms": 9000, "debounce_max_wait_ms": 8000},
            "The debounce max wait must be at least the quiet window (9000 ms).",
        ),
        (
            {"crm_cache_ttl_seconds": 600, "crm_stale_ttl_seconds": 300},
            "The stale-copy TTL must be at least the CRM cache TTL (600 s).",
        ),
        (
            {"content_retention_days": 30, "media_retention_days": 60},
            "Media cannot be kept longer than the message content (30 days).",
        ),
        ({"lock_ttl_seconds": "abc"}, str(forms.IntegerField.default_error_messages["invalid"])),
        ({"outage_notice_template": "Falha: {mensagem}"}, "Unknown placeholder {mensagem}"),
        ({"outage_notice_template": "Falha: {message"}, "Unbalanced braces"),
        ({"llm_model": "gpt 5"}, "A model name has no spaces"),
        (
            {"fallback_reply": "x" * 5000},
            "At most 4096 characters, please: WhatsApp refuses longer messages.",
        ),
        ({"llm_prices": "gpt-5-mini 0.25 0.025"}, "Linha 1: escreva o nome do modelo e três"),
        ({"llm_prices": "gpt-5 1 1 1\ngpt-5-mini a b c"}, "Linha 2: escreva o nome do modelo"),
        ({"llm_prices": "gpt-5-mini -1 0 2"}, "Linha 1: escreva o nome do modelo"),
        ({"llm_prices": "gpt-5-mini 1 2 3 4"}, "Linha 1: escreva o nome do modelo"),
        ({"llm_prices": "gpt-5-mini 1 nan 3"}, "Linha 1: escreva o nome do modelo"),
    ],
)
def test_it_rejects_a_bad_value_with_a_clear_message_and_saves_nothing(
    admin_client, row, changes, message
):
    before = saved_values(row)
    response = admin_client.post(change_url(row), form_data(row, **changes))
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode().replace("&#x27;", "'")
    assert saved_values(row) == before
    assert not LogEntry.objects.exists()


def test_it_saves_a_good_change_and_logs_who_changed_which_fields(admin_client, row, admin_user):
    get_runtime()  # this process has a cached snapshot
    response = admin_client.post(
        change_url(row),
        form_data(row, lock_ttl_seconds=90, supersede_enabled=False, fallback_reply="Já volto!"),
    )
    assert response.status_code == 302
    saved = RuntimeSettings.objects.get(pk=row.pk)
    assert (saved.lock_ttl_seconds, saved.supersede_enabled) == (90, False)
    entry = LogEntry.objects.get()
    assert entry.user == admin_user
    assert entry.action_flag == CHANGE
    assert entry.object_id == str(row.pk)
    # Django stores the changed fields' labels untranslated (JSON), whatever the admin's language.
    change = entry.change_message
    assert "Conversation lock TTL (s)" in change
    assert "Supersede unsent replies" in change
    assert "Fallback reply" in change
    assert "backoff" not in change  # only what changed
    assert "instructions" not in change
    assert get_runtime().lock_ttl_seconds == 90  # the saving process sees it at once


def test_it_accepts_blank_texts_and_serves_the_defaults(admin_client, row):
    response = admin_client.post(
        change_url(row),
        form_data(row, fallback_reply="", assistant_instructions="", outage_notice_template=""),
    )
    assert response.status_code == 302
    runtime = get_runtime()
    assert runtime.fallback_reply == defaults.FALLBACK_REPLY
    assert runtime.assistant_instructions == defaults.ASSISTANT_INSTRUCTIONS
    assert runtime.outage_notice_template == defaults.OUTAGE_NOTICE_TEMPLATE


def test_it_accepts_the_edges_of_the_bounds(admin_client, row):
    response = admin_client.post(
        change_url(row),
        form_data(
            row,
            lock_ttl_seconds=10,
            supersede_cap=0,
            history_window_messages=200,
            backoff_base_ms=2000,
            backoff_cap_ms=2000,
            debounce_quiet_ms=8000,
            debounce_max_wait_ms=8000,
            outage_notice_template="{{Aviso}} {message}",
        ),
    )
    assert response.status_code == 302
    assert RuntimeSettings.objects.get(pk=row.pk).supersede_cap == 0


def test_it_saves_llm_prices_that_the_dashboard_reads(admin_client, row):
    prices = "gpt-5-mini 0.30 0.03 2.50\n\nmy-model 1 0.1 4"
    response = admin_client.post(change_url(row), form_data(row, llm_prices=prices))
    assert response.status_code == 302
    reset_runtime_cache()
    from conversations.runtime_settings import parse_llm_prices

    assert parse_llm_prices(get_runtime().llm_prices) == {
        "gpt-5-mini": (0.30, 0.03, 2.50),
        "my-model": (1.0, 0.1, 4.0),
    }


def test_it_refuses_bad_business_hours_and_an_unknown_placeholder(admin_client, row):
    response = admin_client.post(
        change_url(row),
        form_data(row, hours_monday="18:00-08:00", handoff_closed_template="volta {dia}"),
    )
    assert response.status_code == 200  # the form again, with the errors
    page = response.content.decode()
    assert "O horário de abertura deve ser antes do de fechamento." in page
    assert "só {when} está disponível" in page
    assert saved_values(row)["hours_monday"] == defaults.BUSINESS_HOURS["monday"]


def test_it_saves_the_tools_and_handoff_settings(admin_client, row):
    data = form_data(row, hours_sunday="09:00-13:00", handoff_message="Já chamei a equipe.")
    data.pop("assistant_tools_enabled")  # unticked
    response = admin_client.post(change_url(row), data)
    assert response.status_code == 302
    runtime = get_runtime()
    assert (runtime.hours_sunday, runtime.handoff_message) == ("09:00-13:00", "Já chamei a equipe.")
    assert runtime.assistant_tools_enabled is False
