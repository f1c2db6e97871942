"""The admin's "Painel": who may open it, and what it shows."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from conversations import heartbeat
from conversations.models import Conversation, Customer, Message, Turn
from conversations.staff.dashboard import hourly_chart
from tests.fakes.admin import staff

pytestmark = pytest.mark.django_db
URL = "/admin/dashboard/"


def test_it_sends_anonymous_visitors_to_the_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_it_refuses_staff_without_the_permission(client):
    client.force_login(staff("agent", "view_conversation"))
    assert client.get(URL).status_code == 403


def test_it_opens_for_a_group_given_the_permission(client):
    supervision = Group.objects.create(name="Painel só")
    supervision.permissions.add(Permission.objects.get(codename="view_dashboard"))
    user = staff("supervisor")
    user.groups.add(supervision)
    client.force_login(user)
    assert client.get(URL).status_code == 200


def test_it_shows_the_figures_to_a_superuser(client):
    client.force_login(User.objects.create_superuser("boss"))
    customer = Customer.objects.create(wa_id="5511900000001")
    conversation = Conversation.objects.create(customer=customer)
    Message.objects.create(conversation=conversation, direction="in", text="Olá, sou o cliente")
    Turn.objects.create(
        conversation=conversation, outcome="answered", total_ms=1500, first_reply_ms=2000
    )
    heartbeat.beat("worker-host:4242")
    page = client.get(URL).content.decode()
    assert "<svg" in page and 'class="in"' in page
    # SVG numbers keep their decimal point in the Portuguese admin (7,5 is no coordinate).
    bars = re.findall(r'<rect class="\w+" x="([^"]+)" y="([^"]+)" width="([^"]+)"', page)
    assert bars and all("," not in value for bar in bars for value in bar)
    assert "worker-host:4242" in page
    assert "2,0 s" in page or "2.0 s" in page  # first reply p50, in the page's locale
    assert "Olá, sou o cliente" not in page  # figures only, never a message


def test_it_takes_a_period_and_ignores_a_bad_one(client):
    client.force_login(User.objects.create_superuser("boss"))
    assert client.get(URL, {"period": "30d"}).context["period"] == "30d"
    assert client.get(URL, {"period": "1y"}).context["period"] == "24h"


def test_the_admin_index_links_to_it_for_those_who_may_open_it(client):
    client.force_login(User.objects.create_superuser("boss"))
    assert URL in client.get("/admin/").content.decode()
    client.force_login(staff("agent", "view_conversation"))
    assert URL not in client.get("/admin/").content.decode()


def test_the_chart_has_two_bars_for_every_hour_of_the_period():
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    per_hour = [
        {"hour": start + timedelta(hours=n), "in": 4 if n == 3 else 0, "out": 2 if n == 3 else 0}
        for n in range(24)
    ]
    chart = hourly_chart(per_hour)
    assert len(chart["bars"]) == 48
    tallest = [bar for bar in chart["bars"] if bar["height"] == chart["height"]]
    assert [bar["direction"] for bar in tallest] == ["in"]
    assert chart["peak"] == 4
