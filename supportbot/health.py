from django.http import HttpResponse


def healthz(request):
    """Liveness probe; also the trivial view the ingest benchmark measures as its floor."""
    return HttpResponse("ok", content_type="text/plain")
