"""The staff roles: migration 0008_desk creates them, `setup_roles` restores them, and each role gets
exactly what it needs (conversations.roles)."""

import importlib

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from conversations import roles
from tests.fakes.desk import member

pytestmark = pytest.mark.django_db


def codes(name: str) -> set[tuple[str, str]]:
    group = Group.objects.get(name=name)
    return set(group.permissions.values_list("content_type__app_label", "codename"))


def test_the_migration_creates_both_roles_as_the_app_defines_them():
    migration = importlib.import_module("conversations.migrations.0008_desk")
    assert migration.ROLES == roles.ROLES
    assert codes("Atendimento") == set(roles.ATENDIMENTO)
    assert codes("Supervisão") == set(roles.SUPERVISAO)


def test_setup_roles_restores_a_deleted_group_and_removed_permissions(capsys):
    Group.objects.filter(name="Atendimento").delete()
    Group.objects.get(name="Supervisão").permissions.clear()
    call_command("setup_roles")
    assert codes("Atendimento") == set(roles.ATENDIMENTO)
    assert codes("Supervisão") == set(roles.SUPERVISAO)
    assert f"Atendimento: {len(roles.ATENDIMENTO)} permissions" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url",
    [
        "/admin/conversations/runtimesettings/",
        "/admin/crm_gateway/outage/",
        "/admin/conversations/cannedreply/add/",
        "/admin/dashboard/",
        "/admin/conversations/privacyaudit/",
    ],
)
def test_atendimento_is_refused_what_supervisao_may_do(client, url):
    client.force_login(member("ana", "Atendimento"))
    assert client.get(url).status_code == 403
    client.force_login(member("sueli", "Supervisão"))
    assert client.get(url, follow=True).status_code == 200


def test_atendimento_may_not_post_a_runtime_settings_change(client):
    from conversations.runtime import get_or_create_settings_row

    row = get_or_create_settings_row()
    client.force_login(member("ana", "Atendimento"))
    url = f"/admin/conversations/runtimesettings/{row.pk}/change/"
    assert client.post(url, {"auto_resolve_hours": 1}).status_code == 403
    row.refresh_from_db()
    assert row.auto_resolve_hours == 24


def test_atendimento_may_not_add_a_canned_reply(client):
    from conversations.models import CannedReply

    client.force_login(member("ana", "Atendimento"))
    response = client.post(
        "/admin/conversations/cannedreply/add/", {"shortcut": "oi", "text": "Olá {nome}"}
    )
    assert response.status_code == 403
    assert not CannedReply.objects.exists()
