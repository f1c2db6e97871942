"""The LGPD actions on the customers' admin page (conversations.staff.admin_privacy): only for
supervisors, export as a download, erase after a confirmation page, both in the admin log."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.test import Client

from conversations.models import Customer, Message, PrivacyAudit
from tests.fakes.admin import VIEW_ALL, staff
from tests.fakes.privacy import CPF, NAME, TEXT, person, personal_data_in  # noqa: F401

CHANGELIST = "/admin/conversations/customer/"


@pytest.fixture
def supervisor_client(db):
    client = Client()
    user = User.objects.create_user("sara", is_staff=True)
    user.groups.add(Group.objects.get(name="Supervisão"))  # made by migration 0007_privacy
    user.user_permissions.add(*staff("tmp", *VIEW_ALL).user_permissions.all())
    client.force_login(user)
    return client


@pytest.fixture
def agent_client(db):
    client = Client()
    client.force_login(staff("agent", *VIEW_ALL, "change_customer"))
    return client


def run_action(client, action: str, customer, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [customer.pk], **extra})


def test_it_offers_the_lgpd_actions_to_supervisors_only(supervisor_client, agent_client, person):
    page = supervisor_client.get(CHANGELIST).content.decode()
    assert "export_customer_data" in page and "erase_customer_data" in page
    page = agent_client.get(CHANGELIST).content.decode()
    assert "export_customer_data" not in page and "erase_customer_data" not in page


def test_it_refuses_the_actions_to_staff_without_the_permission(agent_client, person):
    run_action(agent_client, "erase_customer_data", person.customer, confirmed="yes")
    assert Customer.objects.get().document == CPF
    response = run_action(agent_client, "export_customer_data", person.customer)
    assert response.get("Content-Disposition") is None
    assert not PrivacyAudit.objects.exists()


def test_it_exports_a_download_recorded_in_the_admin_log_without_the_name(
    supervisor_client, person
):
    response = run_action(supervisor_client, "export_customer_data", person.customer)
    assert response["Content-Disposition"].startswith('attachment; filename="lgpd-export-')
    (exported,) = json.loads(response.content)["people"]
    assert TEXT in exported["conversations"][0]["messages"][0]["text"]
    (entry,) = LogEntry.objects.all()
    assert (entry.object_repr, entry.user.username) == (f"Customer {person.customer.pk}", "sara")
    assert NAME not in entry.object_repr + entry.change_message
    audit = PrivacyAudit.objects.get()
    assert (audit.action, audit.actor) == ("export", "sara")
    assert personal_data_in(json.dumps(audit.counts)) == []


def test_it_asks_for_confirmation_before_erasing(supervisor_client, person):
    page = run_action(supervisor_client, "erase_customer_data", person.customer)
    assert page.status_code == 200
    assert 'name="confirmed" value="yes"' in page.content.decode()
    assert Customer.objects.get().document == CPF
    assert Message.objects.filter(redacted_at=None).count() == 3


def test_it_erases_once_confirmed_and_records_it(supervisor_client, person):
    response = run_action(
        supervisor_client, "erase_customer_data", person.customer, confirmed="yes"
    )
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.document, customer.profile_name) == ("", "")
    assert not Message.objects.filter(redacted_at=None).exists()
    (entry,) = LogEntry.objects.all()
    assert entry.change_message == "LGPD erase: 3 messages"
    assert PrivacyAudit.objects.get().actor == "sara"
