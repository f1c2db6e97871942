"""The soak's invariants for two kinds of message (soak_checks.check calls them): customers who
ask for a person, and voice notes. From the rows and the fakes' logs, once every process drained.
"""

from collections import Counter, defaultdict

from conversations.assistant.media_input import (
    AUDIO,
    AUDIO_NOT_DOWNLOADED,
    AUDIO_NOT_TRANSCRIBED,
)
from conversations.models import Conversation, Message
from tests.fakes.soak_media import transcript_of
from tests.fakes.soak_traffic import PERSON_TEXT

HANDOFF_KINDS = {Message.Kind.HANDOFF, Message.Kind.FALLBACK}
Source = Conversation.HandoffSource


def _handoff_problem(conversation: Conversation, messages: list[Message], asked: bool) -> str:
    """What is wrong with one handed-over (or asking) conversation's rows, or ""."""
    sent = [m for m in messages if m.direction == Message.Direction.OUTBOUND and m.provider_id]
    handoffs = [m for m in sent if m.kind in HANDOFF_KINDS]
    if conversation.handoff_at is None:
        return "asked for a person, never handed over" if asked else ""
    if len(handoffs) != 1:
        return f"{len(handoffs)} handoff messages sent"
    # The LLM failing first (5% of calls) hands over by the fallback before the tool can.
    expected = Source.FALLBACK if handoffs[0].kind == Message.Kind.FALLBACK else Source.TOOL
    if conversation.handoff_source != expected:
        return f"handed over by {conversation.handoff_source!r}, expected {expected!r}"
    if expected == Source.TOOL and not asked:
        return "handed over by the tool without asking"
    late_replies = [
        m
        for m in sent
        if m.kind == Message.Kind.REPLY and m.sent_at and m.sent_at > conversation.handoff_at
    ]
    if late_replies:
        return f"{len(late_replies)} bot replies after the handoff"
    later = [
        m
        for m in messages
        if m.direction == Message.Direction.INBOUND and m.created_at > conversation.handoff_at
    ]
    not_skipped = [m.pk for m in later if m.state != Message.State.SKIPPED]
    if not_skipped:
        return f"messages {not_skipped} after the handoff not skipped"
    return ""


def check_handoffs(report, inbound: list[Message], outbound: list[Message]) -> None:
    """Every conversation whose customer asked for a person was handed over exactly once (one
    handoff message, source "tool", or "fallback" when the LLM failed first); no handed-over
    conversation gets a bot reply after its handoff, and its later messages end skipped."""
    asked = {m.conversation_id for m in inbound if PERSON_TEXT in m.text}
    conversations = Conversation.objects.filter(pk__in=asked) | Conversation.objects.filter(
        handoff_at__isnull=False
    )
    messages = defaultdict(list)
    for message in [*inbound, *outbound]:
        messages[message.conversation_id].append(message)
    problems = []
    for conversation in conversations.distinct():
        problem = _handoff_problem(
            conversation, messages[conversation.pk], conversation.pk in asked
        )
        if problem:
            problems.append(f"conversation {conversation.pk}: {problem}")
    sources = Counter(c.handoff_source for c in conversations.distinct() if c.handoff_at)
    report.figure("conversations asking for a person", len(asked))
    report.figure("conversations handed over, by source", dict(sorted(sources.items())))
    report.hold(
        "every request for a person handed over once; no bot reply after a handoff",
        not problems,
        "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
    )


def _transcript_problem(message: Message) -> str:
    if message.transcript:
        expected = transcript_of(message.media_id)
        return "" if message.transcript == expected else f"transcript {message.transcript[:40]!r}"
    if message.media_status in (Message.MediaStatus.STORED, Message.MediaStatus.FAILED):
        return ""  # the documented placeholder: not transcribed, or not downloaded
    return f"no transcript, media {message.media_status!r}"


def _given_to_the_llm(message: Message, given: str) -> bool:
    if message.transcript:
        return f"{AUDIO} {message.transcript}" in given
    # A placeholder names no message: that some input held one is all the logs can tell.
    return AUDIO_NOT_TRANSCRIBED in given or AUDIO_NOT_DOWNLOADED in given


def check_voice_notes(report, result, inbound: list[Message]) -> None:
    """Every voice note ended; those a turn read hold their transcript (or the placeholder
    after a failed download or transcription) and the LLM was given "[áudio] <transcript>";
    no media request arrived before its message was stored (only a worker's turn fetches)."""
    voice = [m for m in inbound if m.type == "audio"]
    states = Counter(m.state for m in voice)
    report.figure("voice notes", f"{len(voice)}, {dict(sorted(states.items()))}")
    unended = [m.pk for m in voice if m.state in (Message.State.PENDING, Message.State.PROCESSING)]
    report.hold("every voice note ended", not unended, f"{len(unended)} pending or claimed")
    # Skipped ones were never read by the bot (a person handles the conversation).
    read = [m for m in voice if m.state in (Message.State.ANSWERED, Message.State.FAILED)]
    wrong = [f"{m.pk}: {p}" for m in read if (p := _transcript_problem(m))]
    placeholders = sum(not m.transcript for m in read)
    report.figure("voice notes read by a turn", f"{len(read)}, {placeholders} with a placeholder")
    report.hold("every voice note read holds its transcript", not wrong, "; ".join(wrong[:5]))
    given = "\n".join(result.llm_inputs)
    missing = [m.pk for m in read if not _given_to_the_llm(m, given)]
    report.hold(
        'the LLM was given "[áudio] <transcript>" of every voice note read',
        not missing,
        f"{len(missing)} missing: {missing[:5]}",
    )
    stored_at = {m.media_id: m.created_at.timestamp() for m in voice}
    early = [
        f"{request.media_id} ({request.step})"
        for request in result.media_requests
        if request.media_id not in stored_at or request.at < stored_at[request.media_id]
    ]
    report.figure("media requests", len(result.media_requests))
    report.hold(
        "no media fetched before its message was stored (no web process fetches)",
        not early,
        "; ".join(early[:5]),
    )
