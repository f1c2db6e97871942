"""Every Redis key of the conversations app, built in one place, all under the `conversations:`
prefix. Keys carry ids only, never a phone number or text. django-redis adds the cache's own
KEY_PREFIX and version around these."""

PREFIX = "conversations:"
LOCK_PREFIX = f"{PREFIX}lock:"


def lock_key(conversation_id: int) -> str:
    """The conversation lock: at most one turn per conversation across all workers."""
    return f"{LOCK_PREFIX}{int(conversation_id)}"


# Operations (issue 14): the metrics every process adds to, and the workers' heartbeats.
METRICS_KEY = f"{PREFIX}metrics"  # a hash: one field per sample, summed over all processes
HEARTBEATS_KEY = f"{PREFIX}heartbeats"  # a sorted set: worker id -> last beat (Unix time)
