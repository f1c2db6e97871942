"""crm_gateway.adapters: the CRM client this process uses."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from crm_gateway import adapters
from crm_gateway.adapters import get_crm_client
from crm_gateway.client import HttpCrmClient
from crm_gateway.demo import DemoCrmClient
from tests.crm_gateway.test_client import CPF, crm  # noqa: F401 (fixture)
from tests.fakes.crm_api import POINT, CountingClient


@override_settings(CRM_BASE_URL="")
def test_it_uses_the_demo_crm_without_a_base_url():
    client = get_crm_client()
    assert isinstance(client, DemoCrmClient)
    assert client.installation_points(CPF, timeout=1)[0]["region"] == "Centro"
    assert client.installation_points("12ABC34501DE35", timeout=1)
    assert client.installation_points("39053344705", timeout=1) == []
    assert client.installation_points("11222333000181", timeout=1)
    assert client.installation_points("86288366757", timeout=1) is None


def test_it_builds_the_configured_client_class(crm):
    with override_settings(CRM_BASE_URL=crm.server.url, CRM_API_TOKEN="crm-token"):
        client = get_crm_client()
        assert isinstance(client, HttpCrmClient)
        assert client is get_crm_client()
        assert client.installation_points(CPF, timeout=2) == [POINT]
    with override_settings(
        CRM_BASE_URL="http://crm.example",
        CRM_CLIENT_CLASS="tests.fakes.crm_api.CountingClient",
    ):
        assert isinstance(get_crm_client(), CountingClient)


@pytest.mark.parametrize("path", ["crm_gateway.nowhere.Client", "crm_gateway.client.CrmError"])
def test_it_refuses_a_bad_client_class(path):
    with (
        override_settings(CRM_BASE_URL="http://crm.example", CRM_CLIENT_CLASS=path),
        pytest.raises(ImproperlyConfigured, match="CRM_CLIENT_CLASS"),
    ):
        get_crm_client()
    assert not any(key[0] == path for key in adapters._clients)
