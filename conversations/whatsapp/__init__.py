"""Everything that speaks the WhatsApp Cloud API's language: the webhook payloads (payloads),
their signature (signature), the 24-hour reply window (window), the sender
and typing indicator (sender), customers' media downloads (media), and the console sender's live
view in the simulator (console).

May import: conversations' base modules (models, events, masking, rows, threads). Never the
engine, the webhook, the assistant or the staff pages: they all build on this package.
"""
