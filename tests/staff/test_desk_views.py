"""conversations.staff.desk_views: the inbox, its queues and search, the conversation pane, the
actions, and the 403 for each of them without its permission."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from conversations.models import Conversation, Message, StaffNote
from tests.fakes.admin import history  # noqa: F401 (fixture)
from tests.fakes.desk import (
    BOT,
    HUMAN,
    agent,  # noqa: F401 (fixture)
    console_sender,  # noqa: F401 (fixture)
    member,
    open_conversation,
    outsider,  # noqa: F401 (fixture)
    said,
    supervisor,  # noqa: F401 (fixture)
    waiting,
)

pytestmark = pytest.mark.django_db
CPF = "52998224725"


def act(client, conversation, action, **data):
    return client.post(f"/admin/inbox/{conversation.pk}/{action}/", data)


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/admin/inbox/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_it_refuses_staff_without_the_view_permission(client, outsider):
    client.force_login(outsider)
    assert client.get("/admin/inbox/").status_code == 403
    assert client.get("/admin/inbox/queues/").status_code == 403


def test_it_lists_the_queues_with_counts_and_the_longest_wait_first(client, agent):
    newer = waiting("5511911110001", minutes_ago=5, name="Bruno")
    older = waiting("5511911110002", minutes_ago=50, name="Carla")
    mine = waiting("5511911110003", minutes_ago=1, name="Dora", assigned_to=agent)
    open_conversation("5511911110004", "Eva")  # with the assistant
    open_conversation("5511911110005", "Fábio", status=Conversation.Status.CLOSED)
    client.force_login(agent)
    html = client.get("/admin/inbox/").content.decode()
    for label in ("Aguardando atendente", "Minhas", "Com o assistente", "Resolvidas"):
        assert label in html
    assert '<span class="desk-count" data-count="waiting">2</span>' in html
    assert '<span class="desk-count" data-count="mine">1</span>' in html
    assert '<span class="desk-count" data-count="bot">1</span>' in html
    assert '<span class="desk-count" data-count="resolved">1</span>' in html
    waiting_part = html[html.index('data-queue="waiting"') : html.index('data-queue="mine"')]
    assert waiting_part.index("Carla") < waiting_part.index("Bruno")
    assert "esperando há 50" in waiting_part
    assert mine.customer.profile_name not in waiting_part
    assert older.pk and newer.pk


def test_a_wait_under_a_minute_reads_less_than_a_minute_not_zero_minutes(client, agent):
    waiting("5511911110004", minutes_ago=0, name="Elisa")
    client.force_login(agent)
    html = client.get("/admin/inbox/").content.decode()
    assert "esperando há menos de um minuto" in html
    assert "0 minuto" not in html


def test_it_is_on_the_admin_index_and_in_the_nav(client, agent):
    client.force_login(agent)
    html = client.get("/admin/").content.decode()
    assert 'href="/admin/inbox/"' in html
    assert "Caixa de entrada" in html
    assert "<title>Administração | supportbot</title>" in html


@pytest.mark.parametrize(
    "term",
    ["5511987654321", "+55 (11) 98765-4321", "551187654321", "Maria", "529.982.247-25"],
)
def test_it_finds_a_customer_by_number_with_or_without_the_ninth_digit_name_or_document(
    client, agent, term
):
    waiting("5511987654321", 3, name="Maria Souza", document=CPF)
    waiting("5521911112222", 3, name="João")
    client.force_login(agent)
    html = client.get("/admin/inbox/queues/", {"q": term}).content.decode()
    assert "Maria Souza" in html
    assert "João" not in html


def test_it_masks_numbers_and_documents_without_the_permission(client, agent, supervisor):
    conversation = waiting("5511987654321", 3, name="Maria", document=CPF)
    client.force_login(agent)
    html = client.get(f"/admin/inbox/{conversation.pk}/pane/").content.decode()
    assert "5511*******21" in html and "5511987654321" not in html
    assert "***.982.247-**" in html and "529.982.247-25" not in html
    client.force_login(supervisor)
    html = client.get(f"/admin/inbox/{conversation.pk}/pane/").content.decode()
    assert "5511987654321" in html and "529.982.247-25" in html


def test_the_pane_shows_bubbles_notes_delivery_media_and_the_turn_under_its_reply(
    client, agent, history
):
    conversation = history["new"]
    StaffNote.objects.create(conversation=conversation, author=agent, text="cliente VIP")
    said(conversation, "", type="audio")
    client.force_login(agent)
    html = client.get(f"/admin/inbox/{conversation.pk}/").content.decode()
    assert 'class="bubble customer"' in html and "internet caiu" in html
    assert 'class="bubble assistant"' in html and "estamos verificando" in html
    assert 'class="bubble note"' in html and "cliente VIP" in html
    assert "Entregue" in html  # the reply's delivery state
    assert "[audio]" in html  # media placeholder
    reply = html.index("estamos verificando")
    assert html.index(f"turno #{history['turn'].pk}", reply) > reply
    assert f'data-open="{history["old"].pk}"' in html  # the earlier conversation


def voice_note(conversation, transcript: str) -> Message:
    return said(
        conversation,
        "",
        type="audio",
        transcript=transcript,
        media_id=f"voice-{conversation.pk}",
        media_status=Message.MediaStatus.STORED,
    )


def test_the_pane_plays_voice_notes_with_their_transcript_and_shows_photos(client, agent):
    conversation = waiting("5511987650001", 3)
    voice = voice_note(conversation, "a luzinha vermelha tá piscando")
    photo = said(
        conversation,
        "o roteador",
        type="image",
        media_id="photo-1",
        media_status=Message.MediaStatus.FAILED,
        media_error="HTTP 404",
    )
    client.force_login(agent)
    html = client.get(f"/admin/inbox/{conversation.pk}/").content.decode()
    assert f'<audio controls preload="none" src="/staff/media/{voice.pk}/">' in html
    assert "a luzinha vermelha tá piscando" in html
    assert f'<img src="/staff/media/{photo.pk}/"' in html
    assert "o roteador" in html  # the caption
    assert "[audio]" not in html and "[image]" not in html


def test_the_pane_shows_only_placeholders_and_transcripts_to_staff_who_may_not_open_media(client):
    conversation = waiting("5511987650002", 3)
    voice = voice_note(conversation, "minha internet caiu")
    reader = member("leitor", "Atendimento")
    reader.groups.clear()
    reader.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="conversations",
            codename__in=["view_conversation", "view_message", "view_customer"],
        )
    )
    client.force_login(reader)
    html = client.get(f"/admin/inbox/{conversation.pk}/").content.decode()
    assert "[audio]" in html and "minha internet caiu" in html
    assert f"/staff/media/{voice.pk}/" not in html


@pytest.mark.parametrize(
    ("source", "reason", "shown"),
    [
        ("tool", "cliente pediu um atendente", "Transferida pelo assistente: cliente pediu um"),
        ("fallback", "assistant failed: HTTP 400", "Transferida após uma falha do assistente"),
        ("window", "fora da janela de 24 h", "Transferida: fora da janela de 24 horas"),
        ("staff", "", "Assumida por um atendente"),
    ],
)
def test_the_pane_says_in_portuguese_why_the_conversation_waits(
    client, agent, source, reason, shown
):
    conversation = waiting("5511987650003", 3, handoff_reason=reason)
    Conversation.objects.filter(pk=conversation.pk).update(handoff_source=source)
    client.force_login(agent)
    html = client.get(f"/admin/inbox/{conversation.pk}/").content.decode()
    assert shown in html
    if source == "fallback":  # the technical detail only as the label's tooltip
        assert f'title="{reason}">Transferida' in html


def test_the_pane_shows_points_and_outages_from_the_crm(client, agent):
    from crm_gateway.demo import DEMO_CUSTOMERS

    document, points = next(iter(DEMO_CUSTOMERS.items()))
    conversation = waiting("5511933334444", 2, document=document)
    client.force_login(agent)
    html = client.get(f"/admin/inbox/{conversation.pk}/pane/").content.decode()
    assert points[0]["address"] in html


def test_the_pane_lists_the_tickets_the_assistant_opened_for_the_customer(client, agent):
    from crm_gateway.models import Ticket

    conversation = waiting("5511933335555", 2)
    earlier = Conversation.objects.create(
        customer=conversation.customer, status=Conversation.Status.CLOSED
    )
    Ticket.objects.create(
        protocol="2026-000777",
        category=Ticket.Category.NO_CONNECTION,
        point_id="PI-1001",
        conversation=earlier,
        idempotency_key="desk-ticket",
    )
    client.force_login(agent)
    html = client.get(f"/admin/inbox/{conversation.pk}/pane/").content.decode()
    assert "2026-000777" in html
    assert "Sem conexão" in html  # the category, in Portuguese
    assert "PI-1001" in html


def test_the_pane_counts_down_the_24_hour_window(client, agent):
    conversation = waiting("5511911110001", 3)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=23)
    )
    client.force_login(agent)
    html = client.get(f"/admin/inbox/{conversation.pk}/pane/").content.decode()
    left = int(html.split('data-window-left="')[1].split('"')[0])
    assert 3500 < left <= 3600


def test_an_agent_takes_over_replies_notes_and_resolves(client, agent, console_sender):
    conversation = open_conversation("5511911110001", "Bia")
    client.force_login(agent)
    assert act(client, conversation, "take_over").json() == {"ok": True}
    conversation.refresh_from_db()
    assert (conversation.handler, conversation.assigned_to) == (HUMAN, agent)
    assert conversation.handoff_source == Conversation.HandoffSource.STAFF
    assert conversation.handoff_at is not None
    answer = act(client, conversation, "reply", text="Olá, sou a Ana.").json()
    sent = Message.objects.get(pk=answer["message_id"])
    assert (sent.kind, sent.delivery_status) == (Message.Kind.STAFF, Message.Delivery.SENT)
    conversation.refresh_from_db()
    assert conversation.first_staff_reply_at is not None
    note_id = act(client, conversation, "note", text="prometi retorno amanhã").json()["note_id"]
    assert StaffNote.objects.get(pk=note_id).author == agent
    assert not Message.objects.filter(text="prometi retorno amanhã").exists()  # never sent
    assert act(client, conversation, "resolve").json() == {"ok": True}
    conversation.refresh_from_db()
    assert (conversation.status, conversation.closed_by) == (Conversation.Status.CLOSED, agent)
    assert conversation.closed_at is not None


def test_an_agent_assigns_to_themself_transfers_and_hands_back(client, agent):
    colleague = member("bia", "Atendimento")
    conversation = waiting("5511911110001", 3)
    client.force_login(agent)
    assert act(client, conversation, "assign_me").status_code == 200
    conversation.refresh_from_db()
    assert conversation.assigned_to == agent
    assert act(client, conversation, "transfer", to=colleague.pk).status_code == 200
    conversation.refresh_from_db()
    assert conversation.assigned_to == colleague
    assert act(client, conversation, "hand_back").status_code == 200
    conversation.refresh_from_db()
    assert (conversation.handler, conversation.assigned_to) == (BOT, None)
    assert (conversation.handoff_at, conversation.handoff_source) == (None, "")


@pytest.mark.parametrize(
    ("to", "error"),
    [
        ("", "Escolha um atendente ativo."),
        ("abc", "Escolha um atendente ativo."),
        ("999999", "Escolha um atendente ativo."),
        ("outsider", "Esse atendente não pode responder conversas."),
        ("inactive", "Escolha um atendente ativo."),
    ],
)
def test_it_refuses_a_transfer_to_nobody_or_to_someone_who_may_not_answer(
    client, agent, outsider, to, error
):
    inactive = member("ines", "Atendimento", is_active=False)
    conversation = waiting("5511911110001", 3, assigned_to=agent)
    client.force_login(agent)
    target = {"outsider": outsider.pk, "inactive": inactive.pk}.get(to, to)
    response = act(client, conversation, "transfer", to=target)
    assert response.status_code == 409
    assert response.json() == {"error": error}
    conversation.refresh_from_db()
    assert conversation.assigned_to == agent


@pytest.mark.parametrize(
    ("fields", "action", "data", "error"),
    [
        ({"handler": BOT}, "reply", {"text": "oi"}, "Assuma a conversa primeiro"),
        ({}, "reply", {"text": "   "}, "Digite uma resposta."),
        ({}, "reply", {"text": "x" * 4097}, "mais de 4096 caracteres"),
        ({"last_inbound_at": None}, "reply", {"text": "oi"}, "mais de 24 horas"),
        ({"status": "closed"}, "reply", {"text": "oi"}, "Esta conversa está resolvida."),
        ({}, "note", {"text": ""}, "Digite uma nota."),
        ({}, "note", {"text": "x" * 4001}, "no máximo 4000"),
        ({"status": "closed"}, "resolve", {}, "já está resolvida"),
        ({"status": "closed"}, "take_over", {}, "Esta conversa está resolvida."),
        ({"handler": BOT}, "hand_back", {}, "Só uma conversa aberta com uma pessoa"),
        ({"handler": BOT}, "assign_me", {}, "Só uma conversa aberta com uma pessoa"),
    ],
)
def test_it_refuses_what_cannot_be_done_now_and_changes_nothing(
    client, agent, console_sender, fields, action, data, error
):
    conversation = waiting("5511911110001", 3)
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    before = Conversation.objects.filter(pk=conversation.pk).values().get()
    client.force_login(agent)
    response = act(client, conversation, action, **data)
    assert response.status_code == 409
    assert error in response.json()["error"]
    assert Conversation.objects.filter(pk=conversation.pk).values().get() == before
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()
    assert not StaffNote.objects.exists()


ACTIONS = ["take_over", "assign_me", "transfer", "hand_back", "resolve", "reply", "note"]


@pytest.mark.parametrize("action", ACTIONS)
def test_it_refuses_each_action_with_403_to_staff_without_the_permission(
    client, outsider, console_sender, action
):
    conversation = waiting("5511911110001", 3)
    before = Conversation.objects.filter(pk=conversation.pk).values().get()
    client.force_login(outsider)
    response = act(client, conversation, action, text="oi", to=outsider.pk)
    assert response.status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).values().get() == before
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()
    assert not StaffNote.objects.exists()


@pytest.mark.parametrize("action", ["take_over", "reply", "resolve", "transfer"])
def test_it_refuses_a_viewer_who_may_only_read(client, console_sender, action):
    from tests.fakes.admin import VIEW_ALL, staff

    conversation = waiting("5511911110001", 3)
    client.force_login(staff("viewer", *VIEW_ALL))
    assert client.get("/admin/inbox/").status_code == 200
    assert act(client, conversation, action, text="oi").status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).assigned_to is None


def test_it_answers_an_action_by_get_with_405_and_an_unknown_one_with_404(client, agent):
    conversation = waiting("5511911110001", 3)
    client.force_login(agent)
    assert client.get(f"/admin/inbox/{conversation.pk}/resolve/").status_code == 405
    assert act(client, conversation, "explode").status_code == 404
    assert client.post("/admin/inbox/999999/resolve/").status_code == 404
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.OPEN


def test_it_refuses_an_action_without_the_csrf_token(agent):
    from django.test import Client

    conversation = waiting("5511911110001", 3)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent)
    assert strict.post(f"/admin/inbox/{conversation.pk}/resolve/").status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.OPEN
