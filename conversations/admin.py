"""Django's admin autodiscovery looks here; the staff's pages live in conversations.staff."""

from conversations.staff import (  # noqa: F401 (each module registers its admin on import)
    admin_conversations,
    admin_customers,
    admin_runtime,
)
