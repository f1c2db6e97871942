"""The admin and the desk speak Brazilian Portuguese, through Django's translation machinery, so
LANGUAGE_CODE=en still gives the English texts."""

import pytest
from django.utils import translation

from conversations.models import Conversation
from tests.fakes.desk import agent, waiting  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_the_admin_is_branded_and_in_portuguese(client, agent):
    client.force_login(agent)
    html = client.get("/admin/conversations/conversation/").content.decode()
    assert "supportbot" in html and "Administração do Django" not in html
    assert "Selecione conversa para modificar" in html


def test_the_inbox_is_in_english_with_language_code_en(client, agent, settings):
    settings.LANGUAGE_CODE = "en"
    waiting("5511911110001", 3)
    client.force_login(agent)
    html = client.get("/admin/inbox/").content.decode()
    assert "Waiting for a person" in html and "Aguardando atendente" not in html


def test_every_choice_of_the_desk_states_is_translated():
    with translation.override("pt-br"):
        labels = [str(label) for _, label in Conversation.Status.choices]
        labels += [str(label) for _, label in Conversation.Handler.choices]
    assert labels == ["Aberta", "Resolvida", "Assistente", "Pessoa"]
