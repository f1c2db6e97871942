"""Prometheus metrics of every process, summed in Redis (issue 14).

Design: each process (daphne, `serve`, every `runworker`, on any machine) adds its counts to one
Redis hash, about once a second, from a background thread; `/metrics` on any web process reads
that hash and renders it with prometheus-client. So one scrape target covers every process, a
worker needs no port of its own, and a counter survives the restart of the process that counted
it (prometheus-client's multiprocess directory would cover one machine only; an endpoint per
worker would make the operator list every worker in the scrape configuration).

Instrumented code makes one-line calls: `metrics.inc(NAME, label=value)`,
`metrics.observe(NAME, seconds)`. Labels are fixed small sets (status codes, types, kinds,
outcomes); never a phone number, document or text.
"""

import atexit
import logging
import math
import threading
import time

from django.core.cache import cache
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from conversations import keys

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)

WEBHOOK_REQUESTS = "supportbot_webhook_requests_total"
MESSAGES_RECEIVED = "supportbot_messages_received_total"
REPLIES_SENT = "supportbot_replies_sent_total"
TURNS = "supportbot_turns_total"
LLM_TOKENS = "supportbot_llm_tokens_total"
LOCK_LOST = "supportbot_lock_lost_total"
CRM_CACHE_LOOKUPS = "supportbot_crm_cache_lookups_total"
TURN_DURATION = "supportbot_turn_duration_seconds"
FIRST_REPLY = "supportbot_first_reply_seconds"
LLM_REQUEST = "supportbot_llm_request_seconds"
CRM_REQUEST = "supportbot_crm_request_seconds"
LOCK_WAIT = "supportbot_lock_wait_seconds"

# name -> (help, label names)
COUNTERS = {
    WEBHOOK_REQUESTS: ("Webhook requests answered, by HTTP status.", ("status",)),
    MESSAGES_RECEIVED: ("Inbound messages stored (duplicates excluded), by type.", ("type",)),
    REPLIES_SENT: ("Messages handed to WhatsApp, by kind.", ("kind",)),
    TURNS: ("Turns ended, by outcome.", ("outcome",)),
    LLM_TOKENS: ("LLM tokens used, by kind.", ("kind",)),
    LOCK_LOST: ("Conversation locks lost by their holder during a turn.", ()),
    CRM_CACHE_LOOKUPS: ("CRM cache lookups, by result.", ("result",)),
}
# name -> (help, label names, buckets in seconds)
HISTOGRAMS = {
    TURN_DURATION: ("Turn duration, from its start to its record.", (), LATENCY_BUCKETS),
    FIRST_REPLY: (
        "From the oldest inbound message of a batch stored to its reply sent.",
        (),
        WAIT_BUCKETS,
    ),
    LLM_REQUEST: ("LLM API request duration.", (), LATENCY_BUCKETS),
    CRM_REQUEST: ("CRM request duration, by operation.", ("operation",), LATENCY_BUCKETS),
    LOCK_WAIT: ("Wait for the conversation lock.", (), LATENCY_BUCKETS),
}
# Values a label may take: anything else is counted as "other" (labels stay a small set).
ALLOWED_LABEL_VALUES = {
    ("kind", REPLIES_SENT): {"assistant", "fallback", "handoff", "outage_notice", "staff"},
    ("kind", LLM_TOKENS): {"input", "cached_input", "output"},
    ("result", CRM_CACHE_LOOKUPS): {"hit", "miss", "stale", "negative", "error", "bypass"},
}
# Message.Kind values -> the replies_sent kinds.
REPLY_KINDS = {
    "reply": "assistant",
    "fallback": "fallback",
    "handoff": "handoff",
    "notice": "outage_notice",
    "staff": "staff",
}
SEPARATOR = "|"


def _label_value(metric: str, name: str, value) -> str:
    text = str(value)
    allowed = ALLOWED_LABEL_VALUES.get((name, metric))
    if allowed is not None:
        return text if text in allowed else "other"
    # Types, statuses, outcomes, operations: short identifiers; anything odd is "other".
    return text if len(text) <= 32 and text.replace("_", "").isalnum() else "other"


def _field(sample: str, metric: str, labelnames, labels: dict) -> str:
    if set(labels) != set(labelnames):
        raise ValueError(f"{metric} takes labels {labelnames}, not {sorted(labels)}")
    values = [_label_value(metric, name, labels[name]) for name in labelnames]
    return SEPARATOR.join([sample, *values])


class _Pending:
    """Counts summed in process, added to the Redis hash in one pipeline by a flusher thread."""

    def __init__(self):
        self._amounts: dict[str, float] = {}
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._failing = False  # log the first failed flush only, not one a second

    def add(self, field: str, amount: float) -> None:
        with self._lock:
            self._amounts[field] = self._amounts.get(field, 0) + amount
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_forever, name="metrics-flush", daemon=True
                )
                self._flusher.start()

    def flush(self, *, quiet: bool = False) -> bool:
        with self._lock:
            amounts, self._amounts = self._amounts, {}
        if not amounts:
            return True
        try:
            pipe = cache.client.get_client(write=True).pipeline(transaction=False)
            key = cache.make_key(keys.METRICS_KEY)
            for field, amount in amounts.items():
                pipe.hincrbyfloat(key, field, amount)
            pipe.execute()
        except Exception as exc:  # Redis down: keep the counts for the next flush
            with self._lock:
                for field, amount in amounts.items():
                    self._amounts[field] = self._amounts.get(field, 0) + amount
            if not (self._failing or quiet):
                logger.warning("metrics not flushed (%s); retrying", type(exc).__name__)
            self._failing = True
            return False
        if self._failing and not quiet:
            logger.info("metrics flushed again")
        self._failing = False
        return True

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL_S)
            self.flush()


_pending = _Pending()
flush = _pending.flush
# The last second's counts; quietly, as logging may be torn down already at exit.
atexit.register(lambda: _pending.flush(quiet=True))


def inc(metric: str, amount: float = 1, **labels) -> None:
    """Add to a counter. Never raises for a bad value: metrics must not break a turn."""
    try:
        _help, labelnames = COUNTERS[metric]
        if amount > 0:
            _pending.add(f"{metric}#{_field('total', metric, labelnames, labels)}", amount)
    except Exception:
        logger.exception("metric %s not counted", metric)


def observe(metric: str, seconds: float, **labels) -> None:
    """Add one observation to a histogram."""
    try:
        _help, labelnames, buckets = HISTOGRAMS[metric]
        seconds = max(0.0, float(seconds))
        index = next((i for i, bound in enumerate(buckets) if seconds <= bound), len(buckets))
        _pending.add(f"{metric}#{_field(f'b{index}', metric, labelnames, labels)}", 1)
        _pending.add(f"{metric}#{_field('sum', metric, labelnames, labels)}", seconds)
    except Exception:
        logger.exception("metric %s not observed", metric)


def inc_reply(message_kind: str) -> None:
    inc(REPLIES_SENT, kind=REPLY_KINDS.get(message_kind, "other"))


def stored() -> dict[str, dict[str, float]]:
    """Every process's counts from Redis (this process's flushed first): metric -> field -> sum."""
    flush()
    raw = cache.client.get_client().hgetall(cache.make_key(keys.METRICS_KEY))
    result: dict[str, dict[str, float]] = {}
    for field, value in raw.items():
        field = field.decode() if isinstance(field, bytes) else field
        metric, _, rest = field.partition("#")
        result.setdefault(metric, {})[rest] = float(value)
    return result


def counter_value(metric: str, **labels) -> float:
    """One counter's sum over every process (tests, the dashboard)."""
    _help, labelnames = COUNTERS[metric]
    return stored().get(metric, {}).get(_field("total", metric, labelnames, labels), 0.0)


def families():
    """The stored counters and histograms as prometheus-client metric families."""
    data = stored()
    for metric, (help_text, labelnames) in COUNTERS.items():
        family = CounterMetricFamily(metric.removesuffix("_total"), help_text, labels=labelnames)
        for field, value in sorted(data.get(metric, {}).items()):
            family.add_metric(field.split(SEPARATOR)[1:], value)
        yield family
    for metric, (help_text, labelnames, buckets) in HISTOGRAMS.items():
        family = HistogramMetricFamily(metric, help_text, labels=labelnames)
        series: dict[tuple, dict[str, float]] = {}
        for field, value in data.get(metric, {}).items():
            sample, *values = field.split(SEPARATOR)
            series.setdefault(tuple(values), {})[sample] = value
        for values, samples in sorted(series.items()):
            cumulative, rows = 0.0, []
            for index, bound in enumerate([*buckets, math.inf]):
                cumulative += samples.get(f"b{index}", 0.0)
                rows.append(("+Inf" if bound == math.inf else str(float(bound)), cumulative))
            family.add_metric(list(values), rows, samples.get("sum", 0.0))
        yield family
