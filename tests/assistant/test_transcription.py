"""Voice notes to text (conversations.assistant.transcription) through the real openai SDK and a
fake transcription endpoint on the wire: the multipart form, the usage, and every failure."""

import logging

import pytest

from conversations.assistant.transcription import TranscriptionError, file_name, transcribe
from tests.fakes.transcription_api import FakeTranscriptionAPI

VOICE = b"OggS\x00\x02" + b"\x01" * 4000
MODEL = "gpt-4o-mini-transcribe"


@pytest.fixture
def api(settings):
    with FakeTranscriptionAPI(text="oi, minha internet caiu de novo") as fake:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = fake.url
        yield fake


async def test_it_sends_multipart_with_the_file_part_named_file(api):
    result = await transcribe(VOICE, "audio/ogg; codecs=opus", model=MODEL, timeout_s=5)
    assert result.text == "oi, minha internet caiu de novo"
    (call,) = api.calls
    assert call.content_type.startswith("multipart/form-data")
    part = call.parts["file"]
    assert part.filename == "voice.ogg"
    assert part.data == VOICE
    assert call.fields["model"] == MODEL
    assert call.fields["language"] == "pt"


async def test_it_keeps_the_usage_the_api_reports(api):
    result = await transcribe(VOICE, "audio/ogg", model=MODEL, timeout_s=5)
    assert result.usage == {"input_tokens": 60, "audio_tokens": 50, "output_tokens": 12}
    api.usage = {"type": "duration", "seconds": 7.5}
    assert (await transcribe(VOICE, "audio/ogg", model="whisper-1", timeout_s=5)).usage == {
        "seconds": 7.5
    }
    api.usage = None
    assert (await transcribe(VOICE, "audio/ogg", model=MODEL, timeout_s=5)).usage == {}


def test_it_names_whatsapp_voice_notes_ogg_never_opus_or_oga():
    assert file_name("audio/ogg; codecs=opus") == "voice.ogg"
    assert file_name("audio/opus") == "voice.ogg"
    assert file_name("audio/mpeg") == "voice.mp3"
    assert file_name("audio/x-unknown") == "voice.ogg"


async def test_it_fails_without_personal_data_in_the_log_when_the_api_answers_400(api, caplog):
    api.status = 400
    caplog.set_level(logging.INFO)
    with pytest.raises(TranscriptionError, match="HTTP 400"):
        await transcribe(VOICE, "audio/ogg", model=MODEL, timeout_s=5)
    assert len(api.calls) == 1  # a 400 is not retried
    assert "minha internet" not in caplog.text


async def test_it_gives_up_when_the_transcription_times_out(api):
    api.delay_s = 2.0
    with pytest.raises(TranscriptionError, match=r"within 0\.3 s"):
        await transcribe(VOICE, "audio/ogg", model=MODEL, timeout_s=0.3)


async def test_it_fails_on_an_empty_transcript(api):
    api.text = "  "
    with pytest.raises(TranscriptionError, match="empty"):
        await transcribe(VOICE, "audio/ogg", model=MODEL, timeout_s=5)


async def test_it_does_not_call_anything_offline_or_without_time(api, settings):
    with pytest.raises(TranscriptionError, match="no time left"):
        await transcribe(VOICE, "audio/ogg", model=MODEL, timeout_s=0)
    settings.OPENAI_API_KEY = ""
    with pytest.raises(TranscriptionError, match="offline"):
        await transcribe(VOICE, "audio/ogg", model=MODEL, timeout_s=5)
    assert api.calls == []
