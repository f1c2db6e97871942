# Placeholder until the webhook lands (issue 2).
from django.http import HttpResponse


def whatsapp_webhook(request):
    return HttpResponse(status=501)
