from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from conversations.models import Conversation, Customer
from crm_gateway.breaker import crm_breaker
from crm_gateway.models import Outage, OutageNotice, normalise_regions
from crm_gateway.outages import (
    active_outages_for,
    open_outage,
    parse_expected_end,
    parse_regions,
    resolve_outage,
)

pytestmark = pytest.mark.django_db


def conversation(wa_id="5511987654321") -> Conversation:
    customer = Customer.objects.create(wa_id=wa_id)
    return Conversation.objects.create(customer=customer)


def test_it_opens_an_outage_with_normalised_regions_and_a_default_title():
    outage = open_outage(regions=[" Zona  Norte ", "centro", "Centro"], message=" Sem sinal. ")
    outage.refresh_from_db()
    assert outage.regions == ["Zona Norte", "centro"]
    assert outage.message == "Sem sinal."
    assert outage.title == "Falha massiva: Zona Norte, centro"
    assert outage.is_active and outage.resolved_at is None


def test_it_keeps_the_given_title_and_expected_end():
    end = timezone.now() + timedelta(hours=2)
    outage = open_outage(regions=["Centro"], message="x", title="Fibra rompida", expected_end=end)
    assert (outage.title, outage.expected_end_at) == ("Fibra rompida", end)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"regions": [], "message": "x"},
        {"regions": None, "message": "x"},
        {"regions": "Centro", "message": "x"},
        {"regions": ["Centro", ""], "message": "x"},
        {"regions": ["Centro", 3], "message": "x"},
        {"regions": ["x" * 101], "message": "x"},
        {"regions": ["Centro"], "message": ""},
        {"regions": ["Centro"], "message": "   "},
        {"regions": ["Centro"], "message": None},
        {"regions": ["Centro"], "message": "x" * 2001},
        {"regions": ["Centro"], "message": "x", "title": "t" * 201},
        {"regions": ["Centro"], "message": "x", "title": 5},
        {
            "regions": ["Centro"],
            "message": "x",
            "expected_end": timezone.now() - timedelta(minutes=1),
        },
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(kwargs):
    with pytest.raises(ValidationError):
        open_outage(**kwargs)
    assert not Outage.objects.exists()


def test_it_parses_regions_and_expected_end():
    assert parse_regions("Centro, Zona Norte,,") == ["Centro", "Zona Norte"]
    with pytest.raises(ValidationError):
        parse_regions(" , ")
    when = parse_expected_end("2099-01-02T03:04:00-03:00")
    assert when.utcoffset() == timedelta(hours=-3)
    assert timezone.is_aware(parse_expected_end("2099-01-02T03:04"))
    for bad in ["amanhã", "", "2000-01-01T00:00Z"]:
        with pytest.raises(ValidationError):
            parse_expected_end(bad)


def test_it_lists_only_started_unresolved_outages_as_active():
    active = open_outage(regions=["Centro"], message="x")
    resolved = open_outage(regions=["Centro"], message="x")
    resolved.resolve()
    Outage.objects.create(
        title="later", message="x", regions=["Centro"], started_at=timezone.now() + timedelta(1)
    )
    assert list(Outage.objects.active()) == [active]


def test_it_matches_regions_ignoring_case_and_spacing():
    outage = open_outage(regions=["Zona Norte"], message="x")
    assert outage.affects(["zona  norte"])
    assert outage.affects(["Centro", "ZONA NORTE"])
    assert not outage.affects(["Zona Sul"])
    assert active_outages_for(["zona norte", None]) == [outage]
    assert active_outages_for([]) == []
    assert active_outages_for(["Centro"]) == []


def test_it_resolves_once():
    outage = open_outage(regions=["Centro"], message="x")
    resolved, changed = resolve_outage(outage.pk)
    assert changed and resolved.resolved_at is not None
    again, changed = resolve_outage(outage.pk)
    assert not changed and again.resolved_at == resolved.resolved_at
    with pytest.raises(Outage.DoesNotExist):
        resolve_outage(outage.pk + 100)


def test_it_validates_the_model_in_the_admin_form_path():
    outage = Outage(title="t", message="x", regions="Centro")
    with pytest.raises(ValidationError):
        outage.full_clean()
    outage = Outage(
        title="t",
        message="x",
        regions=["Centro"],
        expected_end_at=timezone.now() - timedelta(hours=1),
    )
    with pytest.raises(ValidationError, match="after the start"):
        outage.full_clean()


def test_it_allows_one_notice_per_outage_and_conversation():
    outage = open_outage(regions=["Centro"], message="x")
    talk = conversation()
    OutageNotice.objects.create(outage=outage, conversation=talk)
    with pytest.raises(IntegrityError):
        OutageNotice.objects.create(outage=outage, conversation=talk)


def test_it_shows_outages_to_staff_with_notified_count_and_crm_status(client):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    outage = open_outage(regions=["Centro"], message="Sem sinal", title="Fibra rompida")
    open_outage(regions=["Norte"], message="x", title="Antiga").resolve()
    first, second = conversation("5511900000001"), conversation("5511900000002")
    third = Conversation.objects.create(customer=first.customer, status="closed")
    for talk in (first, second, third):
        OutageNotice.objects.create(outage=outage, conversation=talk)
    page = client.get("/admin/crm_gateway/outage/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Fibra rompida" in text and "Antiga" not in text
    assert 'id="crm-status"' in text and "closed" in text
    assert '<td class="field-notified_customers">2</td>' in text
    assert client.get(f"/admin/crm_gateway/outage/{outage.pk}/change/").status_code == 200
    assert "Antiga" in client.get("/admin/crm_gateway/outage/?status=resolved").content.decode()
    every = client.get("/admin/crm_gateway/outage/?status=all").content.decode()
    assert "Antiga" in every and "Fibra rompida" in every


def test_it_shows_an_open_crm_breaker_to_staff(client):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    for _ in range(crm_breaker.threshold):
        crm_breaker.record_failure()
    text = client.get("/admin/crm_gateway/outage/").content.decode()
    assert "<strong>open</strong>" in text and "depois da pausa" in text


def test_it_resolves_selected_outages_from_the_admin(client):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    outage = open_outage(regions=["Centro"], message="x")
    response = client.post(
        "/admin/crm_gateway/outage/",
        {"action": "resolve_selected", "_selected_action": [outage.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 falha(s) massiva(s) resolvida(s)" in response.content.decode()
    outage.refresh_from_db()
    assert outage.resolved_at is not None


def test_it_normalises_regions_or_refuses_them():
    assert normalise_regions(["a", "A ", " b"]) == ["a", "b"]
    with pytest.raises(ValidationError):
        normalise_regions("a")
