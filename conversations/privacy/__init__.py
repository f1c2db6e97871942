"""The customer's LGPD rights and the retention the law asks for: which fields hold personal data
(fields, the one list to extend), finding a person by number or document (people), the export
(export), the erasure (erase), the retention pass (retention) and the audit trail (audit).
Plain functions: the commands, the admin actions and the worker's periodic pass call them.

May import: conversations' base modules, conversations.whatsapp (phone numbers) and crm_gateway
(documents, the CRM cache, outage notices). The engine (the worker's retention pass), the
webhook (erased messages stay erased) and the staff pages build on it.
"""
