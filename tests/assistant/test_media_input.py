"""conversations.assistant.media_input: how voice notes, photos and documents read in the LLM's
input; the real SDK sends the batch's photo as an input_image part; the offline assistant's
answers to media it cannot hear or see."""

import base64

import pytest

from conversations.assistant import media_input
from conversations.assistant.offline import (
    COULD_NOT_FETCH,
    COULD_NOT_LISTEN,
    SAW_PHOTO,
    offline_reply,
)
from conversations.assistant.openai_assistant import AssistantRequest, generate_reply
from conversations.models import Message
from tests.fakes.responses_api import FakeResponsesAPI

MediaStatus = Message.MediaStatus


def inbound(kind, text="", transcript="", status=MediaStatus.STORED) -> Message:
    return Message(direction="in", type=kind, text=text, transcript=transcript, media_status=status)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (inbound("audio", transcript="minha internet caiu"), "[áudio] minha internet caiu"),
        (inbound("audio"), media_input.AUDIO_NOT_TRANSCRIBED),
        (inbound("audio", status=MediaStatus.FAILED), media_input.AUDIO_NOT_DOWNLOADED),
        (inbound("image", "o roteador"), "[imagem] o roteador"),
        (
            inbound("image", "o roteador", status=MediaStatus.FAILED),
            "[imagem não pôde ser baixada] o roteador",
        ),
        (inbound("document", "boleto.pdf", status=MediaStatus.ON_DEMAND), "[documento] boleto.pdf"),
        (inbound("sticker", status=MediaStatus.NONE), "[sticker]"),
        (inbound("text", "oi", status=MediaStatus.NONE), "oi"),
    ],
)
def test_it_reads_each_kind_of_message(message, expected):
    assert media_input.message_text(message) == expected


def test_it_puts_photos_next_to_their_text_as_data_urls():
    content = media_input.user_content("[imagem] o roteador", [(b"\xff\xd8", "image/jpeg")], "low")
    assert content == [
        {"type": "input_text", "text": "[imagem] o roteador"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9g=", "detail": "low"},
    ]
    assert media_input.content_text(content) == "[imagem] o roteador"
    assert media_input.user_content("oi", [], "low") == "oi"


async def test_the_sdk_sends_the_photo_as_an_input_image_part(settings):
    photo = b"\x89PNG" + b"\x00" * 64
    content = media_input.user_content("[imagem] luzes", [(photo, "image/png")], "high")
    with FakeResponsesAPI(reply="Vejo a luz LOS vermelha.") as api:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = api.url
        request = AssistantRequest(
            instructions="seja breve",
            model="gpt-5-mini",
            transcript=[{"role": "user", "content": content}],
            timeout_s=5,
        )
        assert (await generate_reply(request)).text == "Vejo a luz LOS vermelha."
    sent = api.calls[0]["input"][0]["content"]
    assert sent[1] == {
        "type": "input_image",
        "image_url": "data:image/png;base64," + base64.b64encode(photo).decode(),
        "detail": "high",
    }


def offline(*contents) -> str:
    transcript = [{"role": "user", "content": content} for content in contents]
    return offline_reply(AssistantRequest(instructions="", model="", transcript=transcript))


def test_offline_it_asks_to_type_a_voice_note_it_could_not_hear():
    assert COULD_NOT_LISTEN in offline(media_input.AUDIO_NOT_TRANSCRIBED)
    assert COULD_NOT_LISTEN in offline(media_input.AUDIO_NOT_DOWNLOADED)


def test_offline_it_acknowledges_a_photo_and_asks_what_it_shows():
    reply = offline(media_input.user_content("[imagem]", [(b"x", "image/jpeg")], "low"))
    assert SAW_PHOTO in reply
    assert COULD_NOT_FETCH in offline(media_input.IMAGE_NOT_DOWNLOADED)


def test_offline_it_understands_a_transcribed_voice_note_like_text():
    reply = offline("[áudio] oi, minha internet caiu de novo")
    assert "roteador" in reply and COULD_NOT_LISTEN not in reply
