"""The soak's checks of customers asking for a person and of voice notes fail when a promise is
broken (each on rows made to break it) and pass the rows of a run that kept it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Customer, Message, Turn
from tests.e2e.test_soak_checks import _result
from tests.fakes import soak_checks
from tests.fakes.soak_media import MediaRequest, transcript_of
from tests.fakes.soak_traffic import PERSON_TEXT

pytestmark = pytest.mark.django_db

WA_ID = "5511970000002"
HANDOFF_CHECK = "every request for a person handed over once; no bot reply after a handoff"
MEDIA_ID = "media-soak-1-0-0"


def _failed(report) -> list[str]:
    return [invariant.name for invariant in report.failures()]


def _inbound(conversation, wamid, state, **fields) -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        provider_id=wamid,
        state=state,
        **fields,
    )


def _outbound(conversation, wamid, kind, turn=None, sent_at=None) -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUTBOUND,
        kind=kind,
        provider_id=wamid,
        turn=turn,
        sent_at=sent_at or timezone.now(),
    )


def _handed_over(*, source=Conversation.HandoffSource.TOOL, asked=True) -> Conversation:
    """A customer who asked for a person: one turn handed over by the tool, one handoff message
    sent, and a message that came after it, skipped."""
    customer = Customer.objects.create(wa_id=WA_ID)
    handoff_at = timezone.now() - timedelta(seconds=30)
    conversation = Conversation.objects.create(
        customer=customer,
        handler=Conversation.Handler.HUMAN,
        handoff_reason="o cliente pediu um atendente",
        handoff_source=source,
        handoff_at=handoff_at,
    )
    turn = Turn.objects.create(
        conversation=conversation, outcome=Turn.Outcome.HUMAN, finished_at=handoff_at
    )
    text = PERSON_TEXT if asked else "minha internet caiu"
    # As the engine ends a tool handoff: the batch answered, the handoff message its answer.
    asking = _inbound(conversation, "wamid.p-1", Message.State.ANSWERED, text=text, turn=turn)
    Message.objects.filter(pk=asking.pk).update(created_at=handoff_at - timedelta(seconds=5))
    _outbound(conversation, "wamid.h-1", Message.Kind.HANDOFF, turn, handoff_at)
    _inbound(conversation, "wamid.p-2", Message.State.SKIPPED, text="alô?")
    return conversation


def _run(**values):
    values.setdefault("cloud_texts", [])
    values.setdefault("planned_wamids", set())
    return soak_checks.check(_result(**values))


def test_it_passes_a_request_for_a_person_handed_over_once():
    _handed_over()

    report = _run()

    assert report.ok, report.text()


def test_it_fails_a_request_for_a_person_never_handed_over():
    conversation = _handed_over()
    Conversation.objects.filter(pk=conversation.pk).update(
        handoff_at=None, handler=Conversation.Handler.BOT
    )

    assert HANDOFF_CHECK in _failed(_run())


def test_it_fails_a_conversation_handed_over_twice():
    conversation = _handed_over()
    _outbound(conversation, "wamid.h-2", Message.Kind.HANDOFF)

    assert _failed(_run()) == [HANDOFF_CHECK]


def test_it_fails_a_request_handed_over_by_the_wrong_source():
    _handed_over(source=Conversation.HandoffSource.FALLBACK)

    assert _failed(_run()) == [HANDOFF_CHECK]


def test_it_fails_a_tool_handoff_nobody_asked_for():
    _handed_over(asked=False)

    assert _failed(_run()) == [HANDOFF_CHECK]


def test_it_fails_a_bot_reply_sent_after_the_handoff():
    conversation = _handed_over()
    turn = Turn.objects.create(conversation=conversation, outcome=Turn.Outcome.ANSWERED)
    _outbound(conversation, "wamid.r-9", Message.Kind.REPLY, turn)

    assert HANDOFF_CHECK in _failed(_run())


def test_it_fails_a_message_after_the_handoff_that_was_not_skipped():
    _handed_over()
    Message.objects.filter(provider_id="wamid.p-2").update(state=Message.State.ANSWERED)

    assert HANDOFF_CHECK in _failed(_run())


def _voice_note(state=Message.State.ANSWERED, **fields) -> Message:
    """A voice note a turn read and answered, its reply sent."""
    customer = Customer.objects.create(wa_id=WA_ID)
    conversation = Conversation.objects.create(customer=customer)
    turn = Turn.objects.create(
        conversation=conversation, outcome=Turn.Outcome.ANSWERED, finished_at=timezone.now()
    )
    values = dict(
        type="audio",
        media_id=MEDIA_ID,
        media_status=Message.MediaStatus.STORED,
        transcript=transcript_of(MEDIA_ID),
    )
    message = _inbound(conversation, "wamid.soak-1-0-0", state, turn=turn, **{**values, **fields})
    _outbound(conversation, "wamid.r-1", Message.Kind.REPLY, turn)
    return message


def _given(text: str) -> list[str]:
    return [f'[{{"role": "user", "content": "{text}"}}]']


def _fetched(message: Message, seconds_after: float = 1.0) -> list[MediaRequest]:
    at = message.created_at.timestamp() + seconds_after
    return [MediaRequest(at, MEDIA_ID, "info"), MediaRequest(at + 0.1, MEDIA_ID, "file")]


def test_it_passes_a_voice_note_transcribed_and_given_to_the_llm():
    message = _voice_note()

    report = _run(
        media_requests=_fetched(message), llm_inputs=_given(f"[áudio] {message.transcript}")
    )

    assert report.ok, report.text()


def test_it_passes_a_voice_note_whose_download_failed_with_the_placeholder():
    message = _voice_note(transcript="", media_status=Message.MediaStatus.FAILED)

    report = _run(
        media_requests=_fetched(message), llm_inputs=_given("[áudio não pôde ser baixado]")
    )

    assert report.ok, report.text()


def test_it_fails_a_voice_note_left_pending():
    message = _voice_note(state=Message.State.PENDING)

    report = _run(media_requests=_fetched(message), llm_inputs=[])

    assert "every voice note ended" in _failed(report)


def test_it_fails_a_voice_note_read_without_its_transcript():
    message = _voice_note(transcript="", media_status=Message.MediaStatus.PENDING)

    report = _run(
        media_requests=_fetched(message), llm_inputs=_given("[áudio não pôde ser baixado]")
    )

    assert _failed(report) == ["every voice note read holds its transcript"]


def test_it_fails_a_voice_note_holding_another_notes_transcript():
    message = _voice_note(transcript=transcript_of("media-soak-2-0-0"))

    report = _run(
        media_requests=_fetched(message), llm_inputs=_given(f"[áudio] {message.transcript}")
    )

    assert _failed(report) == ["every voice note read holds its transcript"]


def test_it_fails_a_transcript_the_llm_was_not_given():
    message = _voice_note()

    report = _run(media_requests=_fetched(message), llm_inputs=_given("[áudio]"))

    assert _failed(report) == ['the LLM was given "[áudio] <transcript>" of every voice note read']


def test_it_fails_media_fetched_before_its_message_was_stored():
    message = _voice_note()

    report = _run(
        media_requests=_fetched(message, seconds_after=-2.0),
        llm_inputs=_given(f"[áudio] {message.transcript}"),
    )

    assert _failed(report) == [
        "no media fetched before its message was stored (no web process fetches)"
    ]
