"""What support staff and supervisors see: the admin pages for conversations, customers and the
runtime settings, the private view of customers' media (media_view), and the simulator where a
person plays a WhatsApp customer (DEBUG only). Their templates stay in conversations/templates/, where Django's template loader looks for an app's.

May import: anything in conversations and crm_gateway; nothing imports it but the admin's and the
URL configuration's entry points (conversations/admin.py, urls.py, routing.py).
"""
