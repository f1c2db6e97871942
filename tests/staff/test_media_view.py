"""conversations.staff.media_view: customers' media only for staff with the view_media
permission, private responses, documents fetched when first opened, and the media on the
customer's history (audio player and transcript, thumbnail, document link)."""

import pytest
from django.core.files.base import ContentFile

from conversations.models import Message
from tests.fakes.admin import (
    VIEW_ALL,
    history,  # noqa: F401 (fixture)
    page,
    staff,
)
from tests.fakes.media_api import ACCESS_TOKEN, FakeMediaAPI

pytestmark = pytest.mark.django_db

PHOTO = b"\xff\xd8\xff" + b"\x02" * 1000
PDF = b"%PDF-1.7 boleto"
MediaStatus = Message.MediaStatus


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def photo(history):
    message = Message.objects.create(
        conversation=history["new"],
        direction=Message.Direction.INBOUND,
        type="image",
        text="o roteador",
        state=Message.State.ANSWERED,
        media_id="photo-1",
        media_mime_type="image/jpeg",
        media_status=MediaStatus.STORED,
    )
    message.media_file.save("media.jpg", ContentFile(PHOTO))
    return message


def url(message) -> str:
    return f"/staff/media/{message.pk}/"


def test_it_sends_anonymous_visitors_to_the_login(client, photo):
    response = client.get(url(photo))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_it_refuses_staff_without_the_media_permission(client, photo):
    client.force_login(staff("viewer", *VIEW_ALL))
    assert client.get(url(photo)).status_code == 403


def test_it_refuses_a_user_who_is_not_staff_even_with_the_permission(client, photo):
    user = staff("former", "view_media")
    user.is_staff = False
    user.save()
    client.force_login(user)
    assert client.get(url(photo)).status_code == 302


def test_it_serves_the_photo_privately_to_staff_with_the_permission(client, photo):
    client.force_login(staff("agent", *VIEW_ALL, "view_media"))
    response = client.get(url(photo))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PHOTO
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")


def test_it_answers_404_for_a_message_without_media_or_an_outbound_one(admin_client, history):
    assert admin_client.get(url(history["a"])).status_code == 404
    assert admin_client.get(url(history["reply"])).status_code == 404
    assert admin_client.get("/staff/media/999999/").status_code == 404


def test_it_refuses_other_methods(admin_client, photo):
    assert admin_client.post(url(photo)).status_code == 405


def test_it_fetches_a_document_when_staff_first_open_it(admin_client, history, settings):
    with FakeMediaAPI() as graph:
        settings.WHATSAPP_ACCESS_TOKEN = ACCESS_TOKEN
        settings.WHATSAPP_API_BASE_URL = graph.url
        graph.add("doc-1", PDF, "application/pdf")
        document = Message.objects.create(
            conversation=history["new"],
            direction=Message.Direction.INBOUND,
            type="document",
            text="boleto.pdf",
            media_id="doc-1",
            media_mime_type="application/pdf",
            media_status=MediaStatus.ON_DEMAND,
        )
        response = admin_client.get(url(document))
        assert b"".join(response.streaming_content) == PDF
        assert response["Content-Disposition"].startswith("attachment")
        admin_client.get(url(document))  # stored now: not fetched again
        assert graph.paths().count("/doc-1") == 1
    document.refresh_from_db()
    assert document.media_status == MediaStatus.STORED


def test_it_answers_404_when_the_document_cannot_be_fetched(admin_client, history, settings):
    settings.WHATSAPP_ACCESS_TOKEN = ""
    document = Message.objects.create(
        conversation=history["new"],
        direction=Message.Direction.INBOUND,
        type="document",
        media_id="doc-1",
        media_status=MediaStatus.ON_DEMAND,
    )
    assert admin_client.get(url(document)).status_code == 404
    document.refresh_from_db()
    assert document.media_status == MediaStatus.FAILED


def test_the_customers_history_shows_the_player_the_transcript_and_the_thumbnail(
    admin_client, history, photo
):
    voice = Message.objects.create(
        conversation=history["new"],
        direction=Message.Direction.INBOUND,
        type="audio",
        transcript="a luzinha vermelha tá piscando",
        media_id="voice-1",
        media_status=MediaStatus.STORED,
    )
    html = page(admin_client, f"/admin/conversations/customer/{history['customer'].pk}/change/")
    assert f'<audio controls preload="none" src="/staff/media/{voice.pk}/">' in html
    assert "a luzinha vermelha tá piscando" in html
    assert f'<a href="/staff/media/{photo.pk}/" target="_blank"' in html
    assert f'<img src="/staff/media/{photo.pk}/"' in html


def test_staff_opening_a_failed_photo_fetches_it_even_with_the_attempts_spent(
    admin_client, history, settings
):
    with FakeMediaAPI() as graph:
        settings.WHATSAPP_ACCESS_TOKEN = ACCESS_TOKEN
        settings.WHATSAPP_API_BASE_URL = graph.url
        graph.add("photo-2", PHOTO, "image/jpeg")
        failed = Message.objects.create(
            conversation=history["new"],
            direction=Message.Direction.INBOUND,
            type="image",
            media_id="photo-2",
            media_status=MediaStatus.FAILED,
            media_attempts=99,
            media_error="media id answered 401",
        )
        response = admin_client.get(url(failed))
        assert b"".join(response.streaming_content) == PHOTO
    failed.refresh_from_db()
    assert (failed.media_status, failed.media_error) == (MediaStatus.STORED, "")
