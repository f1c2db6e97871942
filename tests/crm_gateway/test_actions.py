import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from conversations.models import Customer
from crm_gateway import keys, lookup
from crm_gateway.actions import refresh_crm_data
from tests.fakes.crm_api import POINT, CountingClient, use_runtime

pytestmark = pytest.mark.django_db

CPF = "52998224725"


class FakeAdmin:
    def __init__(self):
        self.messages = []

    def message_user(self, request, message, level):
        self.messages.append((message, level))


@pytest.fixture
def crm(monkeypatch):
    use_runtime(monkeypatch, crm_timeout_seconds=1)
    client = CountingClient({CPF: [POINT], "11144477735": []})
    monkeypatch.setattr("crm_gateway.lookup.get_crm_client", lambda: client)
    return client


def test_it_forgets_the_cached_copy_and_asks_the_crm_again(crm):
    Customer.objects.create(wa_id="5511900000001", document=CPF)
    Customer.objects.create(wa_id="5511900000002", document="11144477735")
    Customer.objects.create(wa_id="5511900000003")
    lookup.lookup_points(CPF)
    crm.customers[CPF] = [POINT | {"status": "suspenso"}]
    admin = FakeAdmin()
    refresh_crm_data(admin, None, Customer.objects.all())
    assert sorted(crm.calls) == sorted([CPF, CPF, "11144477735"])
    assert cache.get(keys.points_key(CPF))["points"][0]["status"] == "suspenso"
    message, level = admin.messages[0]
    assert "2 customer(s) refreshed" in message and "1 skipped" in message
    assert level == 25  # SUCCESS


def test_it_warns_when_the_crm_does_not_answer(crm):
    Customer.objects.create(wa_id="5511900000001", document=CPF)
    crm.fail = True
    admin = FakeAdmin()
    refresh_crm_data(admin, None, Customer.objects.all())
    message, level = admin.messages[0]
    assert "0 customer(s) refreshed" in message and "1 not refreshed" in message
    assert level == 30  # WARNING


def test_it_runs_from_the_customer_admin(crm, client):
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(staff)
    customer = Customer.objects.create(wa_id="5511900000001", document=CPF)
    response = client.post(
        "/admin/conversations/customer/",
        {"action": "refresh_crm_data", "_selected_action": [customer.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 customer(s) refreshed" in response.content.decode()
    assert crm.calls == [CPF]
