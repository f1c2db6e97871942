"""What support staff and supervisors see: the admin pages for conversations, customers and the
runtime settings, the private view of customers' media (media_view), and the simulator where a
person plays a WhatsApp customer (DEBUG only). Their templates stay in conversations/templates/, where Django's template loader looks for an app's.

The dashboard ("Painel", issue 14) lives here too: dashboard (the page), reports (its figures, also
for `manage.py stats` and `/metrics`' gauges) and rollups (its hourly figures kept in Redis).

May import: anything in conversations and crm_gateway; nothing imports it but the admin's and the
URL configuration's entry points (conversations/admin.py, urls.py, routing.py, supportbot/urls.py
and supportbot/metrics_view.py) and the management commands (stats, runworker).
"""
