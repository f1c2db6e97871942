# Placeholder until the outage API lands (issue 4).
from django.http import HttpResponse


def open_outage_view(request):
    return HttpResponse(status=501)


def resolve_outage_view(request, outage_id):
    return HttpResponse(status=501)
