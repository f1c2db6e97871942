"""conversations.metrics: counts summed in process, added to one Redis hash, rendered for
Prometheus; labels stay a small fixed set."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conversations import metrics


def scrape() -> dict[tuple, float]:
    """What Prometheus would read: (sample name, labels) -> value."""
    registry = CollectorRegistry(auto_describe=False)

    class Collector:
        def collect(self):
            yield from metrics.families()

    registry.register(Collector())
    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_it_adds_counts_to_redis_and_renders_them_as_counters():
    metrics.inc(metrics.WEBHOOK_REQUESTS, status=200)
    metrics.inc(metrics.WEBHOOK_REQUESTS, status=200)
    metrics.inc(metrics.WEBHOOK_REQUESTS, status=403)
    samples = scrape()
    assert samples[("supportbot_webhook_requests_total", (("status", "200"),))] == 2
    assert samples[("supportbot_webhook_requests_total", (("status", "403"),))] == 1


def test_it_renders_histograms_with_cumulative_buckets():
    metrics.observe(metrics.TURN_DURATION, 0.2)
    metrics.observe(metrics.TURN_DURATION, 3.0)
    samples = scrape()
    name = "supportbot_turn_duration_seconds"
    assert samples[(f"{name}_bucket", (("le", "0.1"),))] == 0
    assert samples[(f"{name}_bucket", (("le", "0.25"),))] == 1
    assert samples[(f"{name}_bucket", (("le", "5.0"),))] == 2
    assert samples[(f"{name}_bucket", (("le", "+Inf"),))] == 2
    assert samples[(f"{name}_count", ())] == 2
    assert samples[(f"{name}_sum", ())] == pytest.approx(3.2)


def test_it_maps_message_kinds_to_reply_kinds():
    for kind in ("reply", "fallback", "handoff", "notice", "staff"):
        metrics.inc_reply(kind)
    for kind in ("assistant", "fallback", "handoff", "outage_notice", "staff"):
        assert metrics.counter_value(metrics.REPLIES_SENT, kind=kind) == 1


def test_it_keeps_labels_a_small_set_and_never_free_text():
    metrics.inc(metrics.MESSAGES_RECEIVED, type="Olá, meu CPF é 529.982.247-25")
    metrics.inc(metrics.CRM_CACHE_LOOKUPS, result="5511987654321")
    assert metrics.counter_value(metrics.MESSAGES_RECEIVED, type="other") == 1
    assert metrics.counter_value(metrics.CRM_CACHE_LOOKUPS, result="other") == 1
    rendered = str(scrape())
    assert "529" not in rendered and "5511987654321" not in rendered


def test_it_rejects_wrong_labels_without_raising_to_the_caller(caplog):
    metrics.inc(metrics.TURNS, colour="red")  # a bug in a caller must not break a turn
    metrics.inc("supportbot_unknown_total")
    assert "not counted" in caplog.text
    assert metrics.counter_value(metrics.TURNS, outcome="answered") == 0


def test_it_keeps_the_counts_while_redis_is_down(monkeypatch):
    metrics.inc(metrics.LOCK_LOST)

    def broken(*args, **kwargs):
        raise ConnectionError("redis down")

    with monkeypatch.context() as patched:
        patched.setattr(metrics.cache.client, "get_client", broken)
        assert metrics.flush() is False
    assert metrics.counter_value(metrics.LOCK_LOST) == 1
