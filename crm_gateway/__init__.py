"""The ISP's CRM: the HTTP client and its adapters (client, adapters, demo), the circuit breaker,
the cached single-flight lookup (lookup, keys), document (CPF/CNPJ) helpers, the customer context
a turn reads (context), and massive-failure outages (models, outages, api, admin, commands).

May import: conversations' base modules (models, masking). Never a conversations room: the
engine calls the gateway, not the other way round.
"""
