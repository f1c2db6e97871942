from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings

from crm_gateway import keys, lookup
from tests.fakes.caches import DOWN_CACHES
from tests.fakes.crm_api import POINT, CountingClient, use_runtime

CPF = "52998224725"


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    lookup.counters.reset()
    use_runtime(monkeypatch)


def run(*args) -> str:
    out = StringIO()
    call_command("crm_cache", *args, stdout=out)
    return out.getvalue()


def test_it_invalidates_one_document_given_in_any_format():
    client = CountingClient()
    lookup.lookup_points(CPF, client=client)
    lookup.lookup_points("11144477735", client=client)
    output = run("invalidate", "529.982.247-25")
    assert "***.982.247-**" in output and CPF not in output
    assert cache.get(keys.points_key(CPF)) is None
    assert cache.get(keys.stale_key(CPF)) is None
    assert cache.get(keys.points_key("11144477735")) is not None


def test_it_invalidates_an_alphanumeric_cnpj():
    document = "12ABC34501DE35"
    lookup.lookup_points(document, client=CountingClient({document: []}))
    assert "**.***.345/01DE-**" in run("invalidate", "12.abc.345/01de-35")
    assert cache.get(keys.points_key(document)) is None


@pytest.mark.parametrize("document", ["123.456.789-00", "abc", ""])
def test_it_refuses_an_invalid_document(document):
    with pytest.raises(CommandError, match="not a valid CPF or CNPJ"):
        run("invalidate", document)


def test_it_clears_only_crm_data():
    lookup.lookup_points(CPF, client=CountingClient())
    cache.set("elsewhere", "kept")
    assert "Would delete 2 cached CRM key(s)" in run("clear", "--dry-run")
    assert cache.get(keys.points_key(CPF)) is not None
    assert "Deleted 2 cached CRM key(s)" in run("clear")
    assert cache.get(keys.points_key(CPF)) is None
    assert cache.get("elsewhere") == "kept"
    assert "misses: 1" in run("stats")


def test_it_prints_hit_rate_counts_and_breaker_state():
    client = CountingClient()
    for _ in range(4):
        lookup.lookup_points(CPF, client=client)
    output = run("stats")
    assert "hit rate: 75.0%" in output
    assert "hits: 3" in output and "misses: 1" in output and "fills: 1" in output
    assert "stale_serves: 0" in output and "errors: 0" in output
    assert "circuit breaker: closed" in output


def test_it_prints_a_zero_hit_rate_before_any_lookup():
    assert "hit rate: 0.0%" in run("stats")


@pytest.mark.parametrize("args", [[], ["explode"], ["invalidate"]])
def test_it_refuses_unknown_or_incomplete_actions(args):
    with pytest.raises(CommandError):
        run(*args)


@override_settings(CACHES=DOWN_CACHES)
@pytest.mark.parametrize("args", [["stats"], ["clear"], ["invalidate", CPF]])
def test_it_says_clearly_when_redis_is_down(args):
    with pytest.raises(CommandError, match="Redis is not reachable"):
        run(*args)


@pytest.mark.live
def test_it_clears_only_crm_data_on_real_redis(live_redis_url):
    from django.conf import settings

    assert settings.CACHES["default"]["LOCATION"] == live_redis_url
    for document in (CPF, "11144477735", "12ABC34501DE35"):
        lookup.lookup_points(document, client=CountingClient({document: [POINT]}))
    cache.set("conversations:lock:1", "held")
    assert "Deleted 6 cached CRM key(s)" in run("clear")
    assert cache.get("conversations:lock:1") == "held"
    assert "fills: 3" in run("stats")
