"""Media messages through the webhook: ingest stores the media id, mime type and sha256 and the
download's state, and fetches nothing (the worker does), on SQLite and on PostgreSQL."""

from unittest import mock

import pytest

from conversations.models import Message
from tests.fakes import whatsapp_payloads as wa
from tests.fakes.media_api import ACCESS_TOKEN, FakeMediaAPI

pytestmark = pytest.mark.django_db

SECRET = "test-app-secret"
SENDER = "5511987654321"
SHA = "lQ9X0hW7pO0mEAlT4Z0nQ1yGv2Xy7Q8h3bV6Zb0m0xY="


@pytest.fixture
def graph(settings):
    with FakeMediaAPI() as fake:
        settings.WHATSAPP_APP_SECRET = SECRET
        settings.WHATSAPP_ACCESS_TOKEN = ACCESS_TOKEN
        settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
        settings.WHATSAPP_API_BASE_URL = fake.url
        fake.add("voice-1", b"OggS", "audio/ogg")
        yield fake


def deliver_media(client):
    body = wa.encode(
        wa.notification(
            [
                wa.media_message(
                    SENDER,
                    "audio",
                    media_id="voice-1",
                    mime_type="audio/ogg; codecs=opus",
                    sha256=SHA,
                    wamid="wamid.VOICE",
                ),
                wa.media_message(
                    SENDER,
                    "image",
                    media_id="photo-1",
                    mime_type="image/jpeg",
                    caption="o roteador",
                    wamid="wamid.PHOTO",
                ),
                wa.media_message(
                    SENDER,
                    "document",
                    media_id="doc-1",
                    mime_type="application/pdf",
                    filename="boleto.pdf",
                    wamid="wamid.DOC",
                ),
                wa.media_message(SENDER, "sticker", media_id="sticker-1", wamid="wamid.STICKER"),
            ]
        )
    )
    with mock.patch("conversations.events.send_wake", return_value=True):
        return client.post(
            "/webhooks/whatsapp/",
            data=body,
            content_type="application/json",
            headers=wa.signed_headers(SECRET, body),
        )


def check_stored_without_fetching(client, graph):
    assert deliver_media(client).status_code == 200
    assert graph.requests == []  # nothing fetched inside the webhook request
    voice = Message.objects.get(provider_id="wamid.VOICE")
    assert (voice.media_id, voice.media_mime_type, voice.media_sha256) == (
        "voice-1",
        "audio/ogg; codecs=opus",
        SHA,
    )
    assert voice.media_status == Message.MediaStatus.PENDING
    photo = Message.objects.get(provider_id="wamid.PHOTO")
    assert (photo.media_status, photo.text) == (Message.MediaStatus.PENDING, "o roteador")
    document = Message.objects.get(provider_id="wamid.DOC")
    assert (document.media_status, document.text) == (Message.MediaStatus.ON_DEMAND, "boleto.pdf")
    sticker = Message.objects.get(provider_id="wamid.STICKER")
    assert (sticker.media_id, sticker.media_status) == ("", Message.MediaStatus.NONE)
    assert not voice.media_file


def test_it_stores_media_messages_and_fetches_nothing_in_the_webhook(client, graph):
    check_stored_without_fetching(client, graph)


@pytest.mark.live
def test_on_postgresql_it_stores_media_messages_and_fetches_nothing(
    live_database_url, client, graph
):
    check_stored_without_fetching(client, graph)


def test_a_redelivery_changes_nothing_of_a_failed_download(client, graph):
    deliver_media(client)
    Message.objects.filter(provider_id="wamid.VOICE").update(
        media_status=Message.MediaStatus.FAILED, media_attempts=1
    )
    deliver_media(client)
    voice = Message.objects.get(provider_id="wamid.VOICE")
    assert (voice.media_status, voice.media_attempts) == (Message.MediaStatus.FAILED, 1)
    assert graph.requests == []
