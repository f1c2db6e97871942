"""`manage.py fetch_media [--dry-run] [--limit N]`: failed downloads are fetched again apart from
message dedupe, and voice notes transcribed."""

from io import StringIO

import pytest
from django.core.management import call_command

from conversations.engine.media_step import MAX_DOWNLOADS
from conversations.models import Message
from tests.fakes.engine import new_conversation, short_lived_connections  # noqa: F401
from tests.fakes.media_api import ACCESS_TOKEN, FakeMediaAPI
from tests.fakes.transcription_api import FakeTranscriptionAPI

pytestmark = pytest.mark.django_db(transaction=True)

VOICE = b"OggS" + b"\x05" * 500
MediaStatus = Message.MediaStatus


@pytest.fixture
def graph(settings, tmp_path):
    with FakeMediaAPI() as fake, FakeTranscriptionAPI(text="minha internet caiu") as stt:
        settings.WHATSAPP_ACCESS_TOKEN = ACCESS_TOKEN
        settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
        settings.WHATSAPP_API_BASE_URL = fake.url
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = stt.url
        settings.MEDIA_ROOT = str(tmp_path)
        fake.add("voice-1", VOICE, "audio/ogg")
        yield fake


def voice_note(conversation, *, media_status, attempts=0, state=Message.State.ANSWERED, **kw):
    return Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        type="audio",
        state=state,
        media_id="voice-1",
        media_mime_type="audio/ogg",
        media_status=media_status,
        media_attempts=attempts,
        **kw,
    )


def fetch_media(*args) -> str:
    out = StringIO()
    call_command("fetch_media", *args, stdout=out)
    return out.getvalue()


def test_it_fetches_a_failed_download_again_and_transcribes_it(graph):
    c = new_conversation()
    failed = voice_note(c, media_status=MediaStatus.FAILED, attempts=1)
    assert "1 of 1 stored" in fetch_media()
    failed.refresh_from_db()
    assert failed.media_status == MediaStatus.STORED
    assert failed.media_attempts == 2
    assert failed.transcript == "minha internet caiu"
    with failed.media_file.open("rb") as stored:
        assert stored.read() == VOICE


def test_it_fetches_media_no_turn_will_take_and_leaves_the_rest(graph):
    c = new_conversation()
    skipped = voice_note(c, media_status=MediaStatus.PENDING, state=Message.State.SKIPPED)
    in_a_turn = voice_note(c, media_status=MediaStatus.PENDING, state=Message.State.PROCESSING)
    spent = voice_note(c, media_status=MediaStatus.FAILED, attempts=MAX_DOWNLOADS)
    fetch_media()
    for message in (skipped, in_a_turn, spent):
        message.refresh_from_db()
    assert skipped.media_status == MediaStatus.STORED
    assert in_a_turn.media_status == MediaStatus.PENDING  # its turn fetches it
    assert spent.media_status == MediaStatus.FAILED


def test_a_dry_run_lists_and_changes_nothing(graph):
    c = new_conversation()
    failed = voice_note(c, media_status=MediaStatus.FAILED, attempts=1)
    out = fetch_media("--dry-run")
    assert f"message {failed.pk} (audio" in out and "dry run" in out
    failed.refresh_from_db()
    assert failed.media_status == MediaStatus.FAILED
    assert graph.requests == []


def test_it_says_there_is_nothing_to_fetch_and_asks_the_cloud_api_nothing(graph):
    assert "nothing to fetch" in fetch_media()
    assert graph.requests == []
