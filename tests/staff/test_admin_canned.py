"""conversations.staff.admin_canned: supervisors edit canned replies; bad ones are refused with a
clear message and nothing is stored."""

import pytest

from conversations.models import CannedReply
from tests.fakes.desk import supervisor  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
ADD = "/admin/conversations/cannedreply/add/"


def test_a_supervisor_adds_a_canned_reply(client, supervisor):
    client.force_login(supervisor)
    response = client.post(ADD, {"shortcut": "boleto", "text": "Oi {nome}, segue o boleto."})
    assert response.status_code == 302
    assert CannedReply.objects.get().render("Ana") == "Oi Ana, segue o boleto."


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"shortcut": "2 via", "text": "oi"}, "Só letras minúsculas"),
        ({"shortcut": "/boleto", "text": "oi"}, "Só letras minúsculas"),
        ({"shortcut": "boleto", "text": "Oi {name}"}, "Marcador desconhecido {name}"),
        ({"shortcut": "boleto", "text": ""}, "Este campo é obrigatório"),
        ({"shortcut": "boleto", "text": "x" * 4097}, "4096"),
    ],
)
def test_it_refuses_a_bad_canned_reply_and_stores_nothing(client, supervisor, data, error):
    client.force_login(supervisor)
    response = client.post(ADD, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not CannedReply.objects.exists()


def test_it_refuses_a_second_reply_with_the_same_shortcut(client, supervisor):
    CannedReply.objects.create(shortcut="boleto", text="um")
    client.force_login(supervisor)
    response = client.post(ADD, {"shortcut": "boleto", "text": "dois"})
    assert response.status_code == 200
    assert CannedReply.objects.count() == 1
