import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from conversations.models import RuntimeSettings
from crm_gateway.demo import DEMO_CUSTOMERS


def seed() -> tuple[str, str]:
    """Run the command; returns its output and the password it printed."""
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    match = re.search(r"user 'demo'\s+password (\S+)", text)
    assert match, text
    return text, match.group(1)


@pytest.fixture
def embedded(settings):
    settings.EMBEDDED = True
    settings.DEBUG = True
    settings.CRM_BASE_URL = ""
    return settings


@pytest.mark.django_db
def test_it_creates_the_settings_row_and_a_demo_superuser(embedded):
    _, password = seed()
    assert RuntimeSettings.objects.count() == 1
    user = authenticate(username="demo", password=password)
    assert user is not None
    assert user.is_staff and user.is_superuser


@pytest.mark.django_db
def test_it_is_idempotent_and_resets_the_password(embedded):
    _, first = seed()
    _, second = seed()
    assert first != second
    assert RuntimeSettings.objects.count() == 1
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert authenticate(username="demo", password=first) is None
    assert authenticate(username="demo", password=second) is not None


@pytest.mark.django_db
def test_it_restores_a_demo_user_someone_demoted(embedded):
    get_user_model().objects.create_user("demo", password="old", is_active=False)
    _, password = seed()
    user = authenticate(username="demo", password=password)
    assert user is not None and user.is_superuser


@pytest.mark.django_db
def test_it_keeps_an_existing_settings_row(embedded):
    RuntimeSettings.objects.create(debounce_quiet_ms=500)
    seed()
    assert list(RuntimeSettings.objects.values_list("debounce_quiet_ms", flat=True)) == [500]


@pytest.mark.django_db
def test_it_prints_the_demo_crm_customers_with_their_regions(embedded):
    text, _ = seed()
    assert len(DEMO_CUSTOMERS) >= 3
    assert "529.982.247-25" in text
    assert "12.ABC.345/01DE-35" in text
    for points in DEMO_CUSTOMERS.values():
        for point in points:
            assert point["region"] in text
    assert "/simulator/" in text


@pytest.mark.django_db
def test_it_says_when_the_simulator_is_off(embedded):
    embedded.DEBUG = False
    text, _ = seed()
    assert "DJANGO_DEBUG=true" in text


@pytest.mark.django_db
def test_it_says_when_a_real_crm_is_configured(embedded):
    embedded.CRM_BASE_URL = "http://crm.example"
    text, _ = seed()
    assert "not in use" in text


@pytest.mark.django_db
def test_it_refuses_outside_embedded_mode(settings):
    settings.EMBEDDED = False
    with pytest.raises(CommandError, match="embedded mode"):
        call_command("seed_demo", stdout=StringIO())
    assert not get_user_model().objects.filter(username="demo").exists()
    assert not RuntimeSettings.objects.exists()


def test_it_sets_up_the_staff_roles_and_a_canned_reply(db, capsys):
    from django.contrib.auth.models import Group

    from conversations.models import CannedReply

    Group.objects.filter(name="Atendimento").delete()
    call_command("seed_demo")
    assert set(Group.objects.values_list("name", flat=True)) >= {"Atendimento", "Supervisão"}
    assert CannedReply.objects.get(shortcut="boleto").render("Maria").startswith("Oi Maria!")
    assert "/admin/inbox/" in capsys.readouterr().out
