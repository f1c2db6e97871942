"""What a CRM call raises (re-exported by crm_gateway.client, where callers import them)."""


class CrmError(Exception):
    """The CRM did not give a usable answer (down, slow, 5xx, bad body, breaker open)."""


class CrmUnavailable(CrmError):
    """The circuit breaker is open: the CRM was not called."""


class CrmNotSupported(CrmError):
    """This CRM (or its adapter) does not offer the feature: the tool says it is not available.
    Not a failure of the CRM: the breaker is not touched."""
