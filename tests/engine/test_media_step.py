"""A turn with voice notes and photos (conversations.engine.media_step through the turn loop): the
media fetched from a fake Graph server and transcribed by a fake transcription endpoint over the
wire, while the CRM lookup runs; what the assistant reads; failures that never fail the turn."""

import base64
import threading
import uuid

import pytest
from django.db import close_old_connections

from conversations.assistant.media_input import (
    AUDIO_NOT_DOWNLOADED,
    AUDIO_NOT_TRANSCRIBED,
    IMAGE_NOT_DOWNLOADED,
)
from conversations.assistant.offline import COULD_NOT_LISTEN, SAW_PHOTO
from conversations.engine import turn_loop, turn_run
from conversations.engine.media_step import MAX_DOWNLOADS
from conversations.models import Message, Turn
from crm_gateway.context import CustomerContext
from tests.fakes.engine import (
    assistant,  # noqa: F401 (fixture)
    astore,
    configure,
    conversation,
    crm,  # noqa: F401 (fixture)
    inbound,
    q,
    replies,
    request_texts,
    scaled,  # noqa: F401 (fixture)
    short_lived_connections,  # noqa: F401 (fixture)
    turns,
)
from tests.fakes.media_api import ACCESS_TOKEN, FakeMediaAPI
from tests.fakes.transcription_api import FakeTranscriptionAPI

pytestmark = pytest.mark.django_db(transaction=True)

VOICE = b"OggS" + b"\x07" * 3000
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x01" * 2000


@pytest.fixture
def graph(settings, tmp_path):
    with FakeMediaAPI() as fake:
        settings.WHATSAPP_ACCESS_TOKEN = ACCESS_TOKEN
        settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
        settings.WHATSAPP_API_BASE_URL = fake.url
        settings.MEDIA_ROOT = str(tmp_path / "media")
        yield fake


@pytest.fixture
def stt(settings):
    with FakeTranscriptionAPI(text="oi, minha internet caiu de novo") as fake:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = fake.url
        yield fake


def store_media(conversation_id: int, kind: str, media_id: str, mime: str, caption="") -> Message:
    """What ingest stores for a voice note or a photo: pending, with its media id."""
    close_old_connections()
    try:
        return Message.objects.create(
            conversation_id=conversation_id,
            direction=Message.Direction.INBOUND,
            provider_id=f"wamid.test-{uuid.uuid4().hex}",
            type=kind,
            text=caption,
            state=Message.State.PENDING,
            media_id=media_id,
            media_mime_type=mime,
            media_status=Message.MediaStatus.PENDING,
        )
    finally:
        close_old_connections()


async def test_a_burst_of_a_voice_note_and_a_text_makes_one_turn_and_one_llm_call(
    scaled, assistant, crm, graph, stt
):
    await burst_of_a_voice_note_and_a_text(assistant, graph, stt)


@pytest.mark.live
async def test_on_postgresql_a_burst_of_a_voice_note_and_a_text_makes_one_turn(
    live_database_url, live_redis_url, scaled, assistant, crm, graph, stt
):
    await burst_of_a_voice_note_and_a_text(assistant, graph, stt)


async def burst_of_a_voice_note_and_a_text(assistant, graph, stt):
    graph.add("voice-1", VOICE, "audio/ogg; codecs=opus")
    stt.delay_s = 0.05  # so the recorded transcription time has a floor
    c = await conversation()
    await q(store_media, c.pk, "audio", "voice-1", "audio/ogg; codecs=opus")
    await astore(c.pk, "a luzinha vermelha tá piscando")
    await turn_loop.run_turns(c.pk)
    (call,) = assistant.calls
    assert request_texts(call)[-2:] == [
        "[áudio] oi, minha internet caiu de novo",
        "a luzinha vermelha tá piscando",
    ]
    (turn,) = await q(turns, c.pk)
    assert turn.outcome == Turn.Outcome.ANSWERED and turn.batch_size == 2
    assert turn.transcription_usage == {"input_tokens": 60, "audio_tokens": 50, "output_tokens": 12}
    assert turn.transcription_ms >= 50
    voice, _ = await q(inbound, c.pk)
    assert voice.transcript == "oi, minha internet caiu de novo"
    assert voice.media_status == Message.MediaStatus.STORED
    assert voice.media_size == len(VOICE)
    with voice.media_file.open("rb") as stored:
        assert stored.read() == VOICE
    assert stt.calls[0].parts["file"].filename == "voice.ogg"


async def test_it_transcribes_while_the_crm_lookup_runs(scaled, assistant, graph, stt, monkeypatch):
    """The CRM lookup waits (up to 5 s) for the transcription call: it only arrives meanwhile
    when both run at once."""
    overlapped = []

    def crm_waiting_for_the_transcription(conversation_id, texts):
        overlapped.append(stt.called.wait(5))
        return CustomerContext(document_status="unknown", masked_document="")

    monkeypatch.setattr(turn_run, "build_customer_context", crm_waiting_for_the_transcription)
    graph.add("voice-1", VOICE, "audio/ogg")
    c = await conversation()
    await q(store_media, c.pk, "audio", "voice-1", "audio/ogg")
    await turn_loop.run_turns(c.pk)
    assert overlapped == [True]


async def test_the_batchs_photo_goes_to_the_model_as_an_image_part_with_its_caption(
    scaled, assistant, crm, graph
):
    graph.add("photo-1", PHOTO, "image/png")
    c = await conversation()
    await q(store_media, c.pk, "image", "photo-1", "image/png", caption="o roteador")
    await turn_loop.run_turns(c.pk)
    content = assistant.calls[0].transcript[-1]["content"]
    assert content == [
        {"type": "input_text", "text": "[imagem] o roteador"},
        {
            "type": "input_image",
            "image_url": "data:image/png;base64," + base64.b64encode(PHOTO).decode(),
            "detail": "low",
        },
    ]
    # The next turn reads it as history: text only, never sent again.
    await astore(c.pk, "e agora?")
    await turn_loop.run_turns(c.pk)
    later = assistant.calls[1].transcript
    assert {"role": "user", "content": "[imagem] o roteador"} in later
    assert [m for m in later if isinstance(m["content"], list)] == []
    assert graph.paths().count("/photo-1") == 1


async def test_photos_stay_text_when_staff_turn_them_off(assistant, crm, graph, db):
    await q(configure, images_enabled=False)
    graph.add("photo-1", PHOTO, "image/jpeg")
    c = await conversation()
    await q(store_media, c.pk, "image", "photo-1", "image/jpeg")
    await turn_loop.run_turns(c.pk)
    assert assistant.calls[0].transcript[-1]["content"] == "[imagem]"
    (photo,) = await q(inbound, c.pk)
    assert photo.media_status == Message.MediaStatus.STORED  # staff still see it


async def test_a_failed_download_keeps_the_message_with_its_placeholder_and_answers(
    scaled, assistant, crm, graph
):
    c = await conversation()
    await q(store_media, c.pk, "audio", "gone", "audio/ogg")
    await q(store_media, c.pk, "image", "gone-too", "image/jpeg")
    await turn_loop.run_turns(c.pk)
    assert request_texts(assistant.calls[0])[-2:] == [AUDIO_NOT_DOWNLOADED, IMAGE_NOT_DOWNLOADED]
    assert len(await q(replies, c.pk)) == 1
    voice, photo = await q(inbound, c.pk)
    assert voice.state == photo.state == Message.State.ANSWERED
    assert voice.media_status == photo.media_status == Message.MediaStatus.FAILED
    assert voice.media_error == "media id not found (404)"
    # A 404 will not change: spent at once, so fetch_media does not ask again by itself.
    assert voice.media_attempts == photo.media_attempts == MAX_DOWNLOADS
    assert (await q(turns, c.pk))[0].outcome == Turn.Outcome.ANSWERED


async def test_a_failed_transcription_leaves_no_transcript_and_the_reply_goes_out(
    scaled, assistant, crm, graph, stt
):
    stt.status = 400
    graph.add("voice-1", VOICE, "audio/ogg")
    c = await conversation()
    await q(store_media, c.pk, "audio", "voice-1", "audio/ogg")
    await turn_loop.run_turns(c.pk)
    assert request_texts(assistant.calls[0])[-1] == AUDIO_NOT_TRANSCRIBED
    (voice,) = await q(inbound, c.pk)
    assert voice.transcript == "" and voice.media_status == Message.MediaStatus.STORED
    assert len(await q(replies, c.pk)) == 1


async def test_offline_the_assistant_asks_to_type_the_voice_note_and_what_the_photo_shows(
    scaled, crm, graph, settings
):
    settings.OPENAI_API_KEY = ""
    graph.add("voice-1", VOICE, "audio/ogg")
    graph.add("photo-1", PHOTO, "image/jpeg")
    c = await conversation()
    await q(store_media, c.pk, "audio", "voice-1", "audio/ogg")
    await q(store_media, c.pk, "image", "photo-1", "image/jpeg")
    await turn_loop.run_turns(c.pk)
    (reply,) = await q(replies, c.pk)
    assert COULD_NOT_LISTEN in reply.text
    assert SAW_PHOTO in reply.text


async def test_a_slow_download_is_cut_by_the_media_budget_and_the_turn_goes_on(
    assistant, crm, graph, db
):
    await q(configure, media_timeout_seconds=1)
    release = threading.Event()
    original = graph._file

    def slow_file(media_id):
        release.wait(3)
        return original(media_id)

    graph._file = slow_file
    graph.add("voice-1", VOICE, "audio/ogg")
    c = await conversation()
    await q(store_media, c.pk, "audio", "voice-1", "audio/ogg")
    try:
        await turn_loop.run_turns(c.pk)
    finally:
        release.set()
    assert request_texts(assistant.calls[0])[-1] == AUDIO_NOT_DOWNLOADED
    assert (await q(turns, c.pk))[0].outcome == Turn.Outcome.ANSWERED
