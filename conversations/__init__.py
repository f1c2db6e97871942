"""Conversations with customers on WhatsApp. The base modules here are shared by every room:
models (Customer, Conversation, Message, Turn, and runtime_settings' RuntimeSettings), runtime
(the settings snapshot every process reads), defaults (the default texts of the runtime settings), events (channel names and event payloads), keys
(Redis keys), masking (personal data in logs), phone (WhatsApp numbers and CRM phones in one
canonical form), rows (hand-built SQL where the ORM costs too much),
threads (the worker threads blocking calls run in) and backoff (waits that double up to a cap);
for operations: metrics (Prometheus counters and histograms of every process, summed in Redis),
heartbeat (workers' heartbeats) and log_context (the ids on each log line). They import no room.

The rooms, each a subpackage whose docstring says what it may import, from the bottom up:
whatsapp (the Cloud API), assistant (the LLM and offline replies), privacy (LGPD export, erasure,
retention), engine (turns), webhook (the way in), staff (the admin and the simulator). Django's entry points stay where Django looks for
them: admin.py, urls.py, routing.py, apps.py, migrations/ and management/commands/.
"""
