import json

import pytest
from django.test import override_settings

from crm_gateway.models import Outage
from crm_gateway.outages import open_outage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("token")]

TOKEN = "monitoring-secret"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture
def token():
    with override_settings(OUTAGE_API_TOKEN=TOKEN):
        yield


def post(client, url, body, **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **headers)


def test_it_opens_an_outage(client):
    response = post(
        client,
        "/api/outages/",
        {
            "regions": ["Centro", "Zona Norte"],
            "message": "Rompimento de fibra.",
            "title": "Fibra",
            "expected_end": "2099-01-01T10:00:00-03:00",
        },
        **AUTH,
    )
    assert response.status_code == 201
    outage = Outage.objects.get()
    assert response.json()["outage"]["id"] == outage.pk
    assert outage.regions == ["Centro", "Zona Norte"] and outage.title == "Fibra"
    assert outage.expected_end_at.isoformat() == "2099-01-01T13:00:00+00:00"


def test_it_accepts_regions_as_a_comma_separated_string(client):
    response = post(client, "/api/outages/", {"regions": "Centro, Sul", "message": "x"}, **AUTH)
    assert response.status_code == 201
    assert response.json()["outage"]["regions"] == ["Centro", "Sul"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong"},
        {"HTTP_AUTHORIZATION": TOKEN},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": "Bearer "},
    ],
)
def test_it_refuses_a_missing_or_wrong_token(client, headers):
    response = post(client, "/api/outages/", {"regions": ["Centro"], "message": "x"}, **headers)
    assert response.status_code == 401
    assert "error" in response.json()
    assert not Outage.objects.exists()


def test_it_refuses_every_token_when_none_is_configured(client):
    with override_settings(OUTAGE_API_TOKEN=""):
        response = post(
            client,
            "/api/outages/",
            {"regions": ["Centro"], "message": "x"},
            HTTP_AUTHORIZATION="Bearer ",
        )
        assert response.status_code == 401
        outage = open_outage(regions=["Centro"], message="x")
        assert post(client, f"/api/outages/{outage.pk}/resolve/", {}, **AUTH).status_code == 401
    assert Outage.objects.get().resolved_at is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "JSON"),
        (b"\xff\xfe", "JSON"),
        ([1, 2], "object"),
        ({"regions": ["Centro"]}, "message"),
        ({"message": "x"}, "region"),
        ({"regions": [], "message": "x"}, "region"),
        ({"regions": "", "message": "x"}, "region"),
        ({"regions": ["Centro"], "message": ""}, "message"),
        ({"regions": ["Centro"], "message": 5}, "message"),
        ({"regions": ["Centro"], "message": "x", "expected_end": "amanhã"}, "ISO"),
        ({"regions": ["Centro"], "message": "x", "expected_end": 5}, "ISO"),
        ({"regions": ["Centro"], "message": "x", "expected_end": "2001-01-01T00:00Z"}, "future"),
        ({"regions": ["Centro"], "message": "x", "severity": "high"}, "severity"),
    ],
)
def test_it_answers_400_to_a_bad_body_and_stores_nothing(client, body, error):
    response = post(client, "/api/outages/", body, **AUTH)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert not Outage.objects.exists()


def test_it_resolves_an_outage_once(client):
    outage = open_outage(regions=["Centro"], message="x")
    first = post(client, f"/api/outages/{outage.pk}/resolve/", b"", **AUTH)
    assert first.status_code == 200 and first.json()["resolved"] is True
    assert first.json()["outage"]["resolved_at"]
    second = post(client, f"/api/outages/{outage.pk}/resolve/", b"", **AUTH)
    assert second.status_code == 200 and second.json()["resolved"] is False


def test_it_answers_404_for_an_unknown_outage(client):
    response = post(client, "/api/outages/999/resolve/", b"", **AUTH)
    assert response.status_code == 404
    assert "999" in response.json()["error"]


def test_it_refuses_to_resolve_without_the_token(client):
    outage = open_outage(regions=["Centro"], message="x")
    assert post(client, f"/api/outages/{outage.pk}/resolve/", b"").status_code == 401
    outage.refresh_from_db()
    assert outage.resolved_at is None


def test_it_only_accepts_post(client):
    assert client.get("/api/outages/", **AUTH).status_code == 405
    assert client.get("/api/outages/1/resolve/", **AUTH).status_code == 405


def test_it_needs_no_csrf_token(token):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = post(strict, "/api/outages/", {"regions": ["Centro"], "message": "x"}, **AUTH)
    assert response.status_code == 201
