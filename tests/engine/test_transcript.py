"""conversations.engine.transcript: the LLM's input, built from our own messages."""

import pytest

from conversations.engine.transcript import transcript, transcript_items
from conversations.models import Message, Turn
from tests.fakes.engine import new_conversation

IN, OUT = Message.Direction.INBOUND, Message.Direction.OUTBOUND


def test_items_give_the_customer_user_and_us_assistant():
    messages = [Message(direction=IN, text="oi"), Message(direction=OUT, text="Olá!")]
    assert transcript_items(messages) == [
        {"role": "user", "content": "oi"},
        {"role": "assistant", "content": "Olá!"},
    ]


def test_items_give_a_message_without_text_its_type():
    assert transcript_items([Message(direction=IN, type="sticker", text="")]) == [
        {"role": "user", "content": "[sticker]"}
    ]


@pytest.mark.django_db
def test_it_puts_the_history_within_the_window_before_the_batch():
    c = new_conversation()

    def message(direction, text, **fields):
        return Message.objects.create(
            conversation=c, direction=direction, text=text, provider_id=f"wamid.{text}", **fields
        )

    message(IN, "antigo", state=Message.State.ANSWERED)
    message(OUT, "resposta antiga", kind=Message.Kind.REPLY)
    message(IN, "anterior", state=Message.State.ANSWERED)
    turn = Turn.objects.create(conversation=c)
    batch = [message(IN, "agora", state=Message.State.PROCESSING, turn=turn)]

    items = transcript(turn, batch, window=2)

    assert [item["content"] for item in items] == ["resposta antiga", "anterior", "agora"]


def test_it_takes_a_history_read_with_the_claim_as_it_is(django_assert_num_queries, db):
    turn = Turn(conversation_id=1)
    history = [Message(direction=OUT, text="resposta antiga")]
    batch = [Message(direction=IN, text="agora")]
    with django_assert_num_queries(0):  # nothing read again
        items = transcript(turn, batch, window=5, history=history)
    assert [item["content"] for item in items] == ["resposta antiga", "agora"]
