"""The staff roles: groups "Atendimento" (the inbox, replies, notes, assignment) and "Supervisão"
(also the full document, runtime settings, outages, canned replies, the dashboard and the LGPD
export and erase). Migration 0008_desk creates
them; `manage.py setup_roles` puts them back as defined here (tests hold the two equal)."""

from django.contrib.auth.models import Group, Permission

ATENDIMENTO = [
    ("conversations", "view_customer"),
    ("conversations", "view_conversation"),
    ("conversations", "change_conversation"),
    ("conversations", "view_message"),
    ("conversations", "view_turn"),
    ("conversations", "view_staffnote"),
    ("conversations", "add_staffnote"),
    ("conversations", "view_cannedreply"),
    ("conversations", "view_media"),
    ("crm_gateway", "view_ticket"),
]
SUPERVISAO = [
    *ATENDIMENTO,
    ("conversations", "view_full_document"),
    ("conversations", "view_runtimesettings"),
    ("conversations", "change_runtimesettings"),
    ("conversations", "add_cannedreply"),
    ("conversations", "change_cannedreply"),
    ("conversations", "delete_cannedreply"),
    ("crm_gateway", "view_outage"),
    ("crm_gateway", "add_outage"),
    ("crm_gateway", "change_outage"),
    ("conversations", "view_dashboard"),
    ("conversations", "export_customer_data"),
    ("conversations", "erase_customer_data"),
    ("conversations", "view_privacyaudit"),
]
ROLES = {"Atendimento": ATENDIMENTO, "Supervisão": SUPERVISAO}


def setup_roles() -> dict[str, int]:
    """Create the groups if missing and give each exactly its permissions; returns the counts."""
    counts = {}
    for name, wanted in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = [
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in wanted
        ]
        group.permissions.set(permissions)
        counts[name] = len(permissions)
    return counts
