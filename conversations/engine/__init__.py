"""The turn engine: the worker that takes wakes (worker), the turn loop under the conversation
lock (turn_loop), a claimed turn's work (turn_run) and end (turn_end), the queue of record's take
side (claims, peeks), the debounce, the transcript the LLM reads, a turn's voice notes and
photos (media_step), the Redis locks and the sweeper.

May import: conversations' base modules, conversations.whatsapp (the sender), conversations.assistant,
conversations.privacy (the worker's retention pass) and crm_gateway. Never conversations.webhook or conversations.staff, which build on it.
"""
