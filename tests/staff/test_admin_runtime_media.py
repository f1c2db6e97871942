"""The runtime settings page's "Voice notes and photos" block (conversations.staff.admin_runtime):
saved values reach the snapshot the engine reads; bad values are refused with a clear error and
change nothing."""

import pytest

from conversations import defaults
from conversations.runtime import get_runtime, reset_runtime_cache
from tests.staff.test_admin_runtime import change_url, form_data, row, saved_values  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_runtime():
    reset_runtime_cache()
    yield
    reset_runtime_cache()


def test_it_shows_the_block_with_the_defaults(admin_client, row):
    page = admin_client.get(change_url(row)).content.decode()
    assert ">Áudios e fotos<" in page
    assert defaults.TRANSCRIPTION_MODEL in page
    snapshot = get_runtime()
    assert (snapshot.media_audio_max_mb, snapshot.media_image_max_mb) == (16, 5)
    assert (snapshot.images_enabled, snapshot.image_detail) == (True, "low")


def test_saved_values_reach_the_engines_snapshot(admin_client, row):
    data = form_data(
        row,
        media_audio_max_mb=8,
        media_image_max_mb=2,
        media_timeout_seconds=12,
        transcription_model="whisper-1",
        image_detail="high",
    )
    data.pop("images_enabled")  # an unticked checkbox: photos off
    response = admin_client.post(change_url(row), data)
    assert response.status_code == 302
    snapshot = get_runtime()
    assert (snapshot.media_audio_max_mb, snapshot.media_image_max_mb) == (8, 2)
    assert snapshot.media_timeout_seconds == 12
    assert snapshot.transcription_model == "whisper-1"
    assert (snapshot.images_enabled, snapshot.image_detail) == (False, "high")


def test_a_blank_transcription_model_means_the_default(admin_client, row):
    admin_client.post(change_url(row), form_data(row, transcription_model=""))
    assert get_runtime().transcription_model == defaults.TRANSCRIPTION_MODEL


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("media_audio_max_mb", 17, "Must be at most 16 MB"),
        ("media_audio_max_mb", 0, "Must be at least 1 MB"),
        ("media_image_max_mb", 6, "Must be at most 5 MB"),
        ("media_timeout_seconds", 121, "Must be at most 120 s"),
        ("media_timeout_seconds", -1, "Must be at least 1 s"),
        ("transcription_model", "gpt 4o", "Um nome de modelo não tem espaços"),
        ("image_detail", "ultra", "escolha válida"),  # Django's own message, in pt-BR
    ],
)
def test_it_refuses_bad_values_and_saves_nothing(admin_client, row, field, value, message):
    before = saved_values(row)
    response = admin_client.post(change_url(row), form_data(row, **{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert saved_values(row) == before
