"""The Cloud API media download (conversations.whatsapp.media) against a fake Graph server over
the real wire: the two steps, the checks, the fresh-URL retry, the bounded retries."""

import base64
import hashlib
import time

import pytest

from conversations.whatsapp import media
from conversations.whatsapp.media import MediaError, download_media
from tests.fakes.media_api import ACCESS_TOKEN, FakeMediaAPI

VOICE = b"OggS" + bytes(range(256)) * 8


@pytest.fixture
def graph(settings, monkeypatch):
    monkeypatch.setattr(media, "RETRY_PAUSE_S", 0.01)
    with FakeMediaAPI() as fake:
        settings.WHATSAPP_ACCESS_TOKEN = ACCESS_TOKEN
        settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
        settings.WHATSAPP_API_BASE_URL = fake.url
        yield fake


def test_it_downloads_in_two_steps_with_the_token_and_our_user_agent(graph):
    graph.add("m1", VOICE, "audio/ogg; codecs=opus")
    got = download_media("m1", "audio", max_bytes=16 * 1024 * 1024)
    assert got.data == VOICE
    assert got.mime_type == "audio/ogg"
    assert got.sha256 == hashlib.sha256(VOICE).hexdigest()
    info, file = graph.requests
    assert info.path == "/m1"
    assert file.path.startswith("/files/m1/")
    for request in (info, file):
        assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
        assert request.headers["User-Agent"] == media.USER_AGENT


def test_it_accepts_a_file_size_given_as_a_string(graph):
    graph.add("m1", VOICE, "audio/ogg", declared_size=str(len(VOICE)))
    assert download_media("m1", "audio", max_bytes=len(VOICE)).data == VOICE


def test_it_checks_the_webhooks_base64_sha256_too(graph):
    graph.add("m1", VOICE, "audio/ogg")
    right = base64.b64encode(hashlib.sha256(VOICE).digest()).decode()
    assert download_media("m1", "audio", expected_sha256=right).data == VOICE
    with pytest.raises(MediaError, match="sha256"):
        download_media("m1", "audio", expected_sha256=base64.b64encode(b"x" * 32).decode())


def test_it_refuses_a_declared_size_over_the_limit_without_downloading(graph):
    graph.add("m1", VOICE, "audio/ogg")
    with pytest.raises(MediaError, match="declared size") as caught:
        download_media("m1", "audio", max_bytes=len(VOICE) - 1)
    assert not caught.value.retryable
    assert graph.paths() == ["/m1"]


def test_it_stops_reading_a_file_larger_than_the_limit_whatever_was_declared(graph):
    big = b"\xff\xd8" + b"x" * 200_000
    graph.add("m1", big, "image/jpeg", declared_size=100)
    with pytest.raises(MediaError, match="over the 1000-byte limit"):
        download_media("m1", "image", max_bytes=1000)


def test_it_refuses_a_wrong_sha256(graph):
    graph.add("m1", VOICE, "audio/ogg", sha256="0" * 64)
    with pytest.raises(MediaError, match="sha256") as caught:
        download_media("m1", "audio")
    assert not caught.value.retryable


@pytest.mark.parametrize("status", [401, 403, 404])
def test_it_asks_for_a_fresh_url_once_when_the_url_has_expired(graph, status):
    graph.add("m1", VOICE, "audio/ogg", expired_urls=1, expired_status=status)
    assert download_media("m1", "audio").data == VOICE
    paths = graph.paths()
    assert paths[0] == "/m1" and paths[2] == "/m1"  # step one again after the 401
    assert paths[1] != paths[3]  # a fresh URL, not the expired one again


def test_it_gives_up_when_the_fresh_url_fails_too_and_says_it_may_work_later(graph, monkeypatch):
    monkeypatch.setattr(media, "MAX_ATTEMPTS", 1)
    graph.add("m1", VOICE, "audio/ogg", expired_urls=5)
    with pytest.raises(MediaError, match="401 twice") as caught:
        download_media("m1", "audio")
    assert caught.value.retryable
    assert graph.paths().count("/m1") == 2


def test_it_fails_at_once_on_a_404_for_the_media_id(graph):
    with pytest.raises(MediaError, match="not found") as caught:
        download_media("unknown", "audio")
    assert not caught.value.retryable
    assert graph.paths() == ["/unknown"]


def test_it_refuses_an_unexpected_mime_type(graph):
    graph.add("m1", b"<html>", "text/html")
    with pytest.raises(MediaError, match="unexpected mime type"):
        download_media("m1", "image")
    assert graph.paths() == ["/m1"]


def test_it_retries_a_server_error_a_bounded_number_of_times(graph):
    graph.add("m1", VOICE, "audio/ogg", info_failures=1)
    assert download_media("m1", "audio").data == VOICE
    graph.add("m2", VOICE, "audio/ogg", info_failures=10)
    with pytest.raises(MediaError, match="500") as caught:
        download_media("m2", "audio")
    assert caught.value.retryable
    assert graph.paths().count("/m2") == media.MAX_ATTEMPTS


def test_it_attempts_nothing_once_the_deadline_has_passed(graph):
    graph.add("m1", VOICE, "audio/ogg")
    with pytest.raises(MediaError, match="no time left"):
        download_media("m1", "audio", deadline=time.monotonic() - 1)
    assert graph.requests == []


def test_it_refuses_without_an_access_token_or_for_a_sticker(graph, settings):
    with pytest.raises(MediaError, match="not downloaded"):
        download_media("m1", "sticker")
    settings.WHATSAPP_ACCESS_TOKEN = ""
    with pytest.raises(MediaError, match="WHATSAPP_ACCESS_TOKEN"):
        download_media("m1", "audio")
    assert graph.requests == []
