"""The way in: Meta's deliveries to /webhooks/whatsapp/, verified and stored exactly once, then a
worker woken. The Django view (views), the plain ASGI app that serves the same answers past
Django's middleware (asgi_app), and the store itself (ingest: the queue of record's put side).

May import: conversations' base modules, conversations.whatsapp (payloads, signature),
conversations.privacy.fields (the wamid hash that keeps erased messages erased) and
conversations.engine.claims (the lock order that ingest shares with the claims). It is a room of
its own, not part of whatsapp/, because whatsapp/ sits below the engine (the engine sends through
it) while the webhook stores into the engine's queue: in one package they would import each other.
"""
