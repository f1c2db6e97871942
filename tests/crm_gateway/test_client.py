import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from crm_gateway.breaker import CLOSED, OPEN, CircuitBreaker
from crm_gateway.client import (
    CrmError,
    CrmUnavailable,
    HttpCrmClient,
    parse_points,
)
from tests.fakes.crm_api import POINT, FakeCrm
from tests.fakes.http import FakeHTTPServer, Reply
from tests.fakes.ports import free_port

CPF = "52998224725"


@pytest.fixture
def crm():
    fake = FakeCrm()
    with FakeHTTPServer(fake) as server:
        fake.server = server
        yield fake


def make_client(crm, **breaker_options):
    client = HttpCrmClient(
        base_url=crm.server.url,
        token="crm-token",
        breaker=CircuitBreaker(**({"threshold": 100} | breaker_options)),
    )
    client.BACKOFF_BASE_S = 0.01
    return client


def test_it_gets_installation_points_with_the_token(crm):
    points = make_client(crm).installation_points(CPF, timeout=2)
    assert points == [POINT]
    request = crm.server.requests[0]
    assert request.method == "GET"
    assert request.path == f"/customers/{CPF}/installation-points"
    assert request.headers["Authorization"] == "Bearer crm-token"


def test_it_returns_none_for_an_unknown_customer(crm):
    assert make_client(crm).installation_points("11144477735", timeout=2) is None
    assert len(crm.server.requests) == 1


def test_it_returns_an_empty_list_for_a_customer_without_points(crm):
    crm.customers["11144477735"] = []
    assert make_client(crm).installation_points("11144477735", timeout=2) == []


def test_it_normalises_numeric_ids_and_drops_extra_keys(crm):
    crm.customers[CPF] = [POINT | {"id": 7, "plan": "500 mega"}]
    assert make_client(crm).installation_points(CPF, timeout=2) == [POINT | {"id": "7"}]


def test_it_retries_a_5xx_and_then_succeeds(crm):
    crm.script = [Reply(503, {"error": "busy"}), Reply(502, "bad gateway")]
    assert make_client(crm).installation_points(CPF, timeout=2) == [POINT]
    assert len(crm.server.requests) == 3


def test_it_gives_up_after_the_bounded_retries(crm):
    crm.script = [Reply(500, {})] * 10
    client = make_client(crm)
    with pytest.raises(CrmError, match="HTTP 500"):
        client.installation_points(CPF, timeout=2)
    assert len(crm.server.requests) == client.MAX_ATTEMPTS


def test_it_does_not_retry_other_client_errors(crm):
    crm.script = [Reply(401, {})]
    with pytest.raises(CrmError, match="HTTP 401"):
        make_client(crm).installation_points(CPF, timeout=2)
    assert len(crm.server.requests) == 1


def test_it_times_out_on_a_slow_crm(crm):
    crm.delay_s = 1.0
    started = time.monotonic()
    with pytest.raises(CrmError, match="timeout"):
        make_client(crm).installation_points(CPF, timeout=0.3)
    assert time.monotonic() - started < 0.9


def test_it_never_retries_past_the_timeout(crm):
    def slow_error(request):
        time.sleep(0.25)
        return Reply(503, {})

    crm.script = [slow_error] * 10
    client = make_client(crm)
    client.BACKOFF_BASE_S = 0.1
    started = time.monotonic()
    with pytest.raises(CrmError):
        client.installation_points(CPF, timeout=0.5)
    assert time.monotonic() - started < 0.9
    assert len(crm.server.requests) <= 2


def test_it_retries_connection_errors_then_fails():
    client = HttpCrmClient(
        base_url=f"http://127.0.0.1:{free_port()}", breaker=CircuitBreaker(threshold=100)
    )
    client.BACKOFF_BASE_S = 0.01
    with pytest.raises(CrmError, match="connection failed"):
        client.installation_points(CPF, timeout=2)


def test_it_survives_a_dropped_connection_then_succeeds(crm):
    def drop(request):
        raise ConnectionAbortedError

    crm.script = [drop]
    assert make_client(crm).installation_points(CPF, timeout=2) == [POINT]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        {"points": []},
        [1, 2],
        [{"id": "1", "address": "x", "city": "y", "region": "z"}],
        [POINT | {"region": None}],
        [POINT | {"id": None}],
        [POINT | {"id": True}],
        [POINT | {"status": 1}],
    ],
)
def test_it_treats_a_body_of_another_shape_as_a_crm_error(crm, body):
    crm.script = [Reply(200, body)]
    with pytest.raises(CrmError):
        make_client(crm).installation_points(CPF, timeout=2)


def test_it_parses_an_empty_list():
    assert parse_points([]) == []


def test_it_opens_the_breaker_and_stops_calling_a_failing_crm(crm):
    crm.script = [Reply(500, {})] * 100
    client = make_client(crm, threshold=2, cooldown_s=60)
    client.MAX_ATTEMPTS = 1
    for _ in range(2):
        with pytest.raises(CrmError):
            client.installation_points(CPF, timeout=2)
    assert client.breaker.state() == OPEN
    with pytest.raises(CrmUnavailable):
        client.installation_points(CPF, timeout=2)
    assert len(crm.server.requests) == 2


def test_it_closes_the_breaker_when_the_crm_recovers(crm):
    crm.script = [Reply(500, {})] * 2
    client = make_client(crm, threshold=2, cooldown_s=0.1)
    client.MAX_ATTEMPTS = 1
    for _ in range(2):
        with pytest.raises(CrmError):
            client.installation_points(CPF, timeout=2)
    with pytest.raises(CrmUnavailable):
        client.installation_points(CPF, timeout=2)
    time.sleep(0.15)
    assert client.installation_points(CPF, timeout=2) == [POINT]
    assert client.breaker.state() == CLOSED
    assert len(crm.server.requests) == 3


def test_it_reopens_the_breaker_when_the_trial_call_fails(crm):
    crm.script = [Reply(500, {})] * 3
    client = make_client(crm, threshold=2, cooldown_s=0.1)
    client.MAX_ATTEMPTS = 1
    for _ in range(2):
        with pytest.raises(CrmError):
            client.installation_points(CPF, timeout=2)
    time.sleep(0.15)
    with pytest.raises(CrmError):
        client.installation_points(CPF, timeout=2)
    assert client.breaker.state() == OPEN


def test_it_counts_unknown_customers_as_a_working_crm(crm):
    client = make_client(crm, threshold=1)
    assert client.installation_points("11144477735", timeout=2) is None
    assert client.breaker.state() == CLOSED


def test_it_refuses_an_http_client_without_a_base_url():
    with pytest.raises(ImproperlyConfigured):
        HttpCrmClient(base_url="")


def test_it_does_not_call_or_blame_the_crm_when_no_time_is_left(crm):
    client = make_client(crm, threshold=1)
    with pytest.raises(CrmError, match="no time left"):
        client.installation_points(CPF, timeout=0)
    assert crm.server.requests == []
    assert client.breaker.state() == CLOSED
