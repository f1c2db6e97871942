"""JSON API for monitoring systems: open and resolve outages.

    POST /api/outages/               {"regions": ["Centro"], "message": "...",
                                      "title": "...", "expected_end": "2026-11-25T20:00-03:00"}
                                     -> 201 {"outage": {...}}
    POST /api/outages/<id>/resolve/  -> 200 {"outage": {...}, "resolved": true|false}

Authorization: Bearer <OUTAGE_API_TOKEN>. 401 without it, with a wrong one, or when no token is
configured; 400 with {"error": "..."} on a bad body, and nothing is stored.
"""

import hmac
import json
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from crm_gateway import outages
from crm_gateway.models import Outage

logger = logging.getLogger(__name__)

OPEN_FIELDS = {"regions", "message", "title", "expected_end"}


def _authorised(request) -> bool:
    expected = settings.OUTAGE_API_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _unauthorised() -> JsonResponse:
    logger.warning("outage API: request without a valid token refused")
    response = _error(401, "A valid 'Authorization: Bearer <token>' header is required.")
    response["WWW-Authenticate"] = "Bearer"
    return response


def _messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@csrf_exempt
@require_POST
def open_outage_view(request):
    if not _authorised(request):
        return _unauthorised()
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "The body must be JSON.")
    if not isinstance(body, dict):
        return _error(400, "The body must be a JSON object.")
    unknown = sorted(set(body) - OPEN_FIELDS)
    if unknown:
        return _error(400, f"Unknown field(s): {', '.join(unknown)}.")
    regions = body.get("regions")
    try:
        if isinstance(regions, str):
            regions = outages.parse_regions(regions)
        expected_end = body.get("expected_end")
        if expected_end is not None:
            if not isinstance(expected_end, str):
                raise ValidationError("expected_end must be an ISO 8601 string.")
            expected_end = outages.parse_expected_end(expected_end)
        outage = outages.open_outage(
            regions=regions,
            message=body.get("message"),
            title=body.get("title") or "",
            expected_end=expected_end,
        )
    except ValidationError as exc:
        return _error(400, _messages(exc))
    return JsonResponse({"outage": outage.as_dict()}, status=201)


@csrf_exempt
@require_POST
def resolve_outage_view(request, outage_id):
    if not _authorised(request):
        return _unauthorised()
    try:
        outage, resolved = outages.resolve_outage(outage_id)
    except Outage.DoesNotExist:
        return _error(404, f"No outage with id {outage_id}.")
    return JsonResponse({"outage": outage.as_dict(), "resolved": resolved})
