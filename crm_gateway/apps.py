from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmGatewayConfig(AppConfig):
    name = "crm_gateway"
    verbose_name = _("CRM gateway")
