"""Probes for load balancers and orchestrators, and metrics for Prometheus: plain Django
views, GET only, never cached, no cookies set. The probes need no authentication (they say
nothing about anyone); /metrics is for the configured networks or the metrics token."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from consent_service.api.errors import ErrorBody, json_error
from consent_service.ops.access import metrics_allowed
from consent_service.ops.exposition import metrics_exposition
from consent_service.ops.readiness import OK, readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no database, so a database outage does not
    get every worker restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness()
    ready = all(result == OK for result in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Reads only (a scrape writes nothing, sets no cookie)."""
    if not metrics_allowed(request):
        # 403, not 404: the path is the well-known one anyway, and a scraper set up
        # wrongly should say "refused", not "missing".
        detail = "Metrics are served to the configured networks or with the metrics token."
        return json_error(request, 403, ErrorBody("permission_error", "metrics_forbidden", detail))
    body, content_type = metrics_exposition(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
