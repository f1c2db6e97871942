"""The CRM adapter this process uses: CRM_CLIENT_CLASS on CRM_BASE_URL, or the built-in demo CRM
without a URL. Built here, apart from crm_gateway.client, so that the demo CRM (a CrmClient) and
the client module do not import each other."""

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from crm_gateway.client import CrmClient
from crm_gateway.demo import DemoCrmClient

_clients: dict[tuple[str, str, str], CrmClient] = {}
_clients_lock = threading.Lock()


def get_crm_client() -> CrmClient:
    """The configured client: CRM_CLIENT_CLASS on CRM_BASE_URL, or the demo CRM without a URL."""
    config = (settings.CRM_CLIENT_CLASS, settings.CRM_BASE_URL, settings.CRM_API_TOKEN)
    client = _clients.get(config)  # the per-lookup fast path, no lock
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(config)
        if client is None:
            client = _clients[config] = _build_client(*config)
        return client


def _build_client(class_path: str, base_url: str, token: str) -> CrmClient:
    if not base_url:
        return DemoCrmClient()
    try:
        client_class = import_string(class_path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"CRM_CLIENT_CLASS {class_path!r} cannot be imported") from exc
    if not (isinstance(client_class, type) and issubclass(client_class, CrmClient)):
        raise ImproperlyConfigured(f"CRM_CLIENT_CLASS {class_path!r} is not a CrmClient subclass")
    return client_class(base_url=base_url, token=token)
