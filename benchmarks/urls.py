"""The product's URLconf plus bench-only views that must never exist in the product:

- /bench/hello/: the do-nothing Django view, baseline of benchmarks/config_endpoint.py.
- /bench/bare/<path>: reads the body and answers posthog-js's `{"status": 1}`; served with
  no middleware at all by benchmarks/wsgi.py (benchmarks/proxy.py's "bare" baseline).
- /bench/blind/<path>: forwards the body bytes unchanged to POSTHOG_HOST/<path> through one
  pooled httpx.Client per process (the proxy's timeouts and pool size), copying only
  Content-Type and User-Agent: the floor for any forwarding view (benchmarks/proxy.py).
- /bench/naive/<path>: PostHog's Django reverse-proxy recipe, a new httpx.Client per request
  forwarding every client header but Host and Content-Length (benchmarks/proxy.py).

Neither forwarding view looks at consent; they exist to be compared with /ph/.
"""

from __future__ import annotations

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from config import urls as product_urls
from consent_service.core.conf import conf


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def bare(request: HttpRequest, path: str) -> HttpResponse:
    request.body  # noqa: B018 (read, as any view taking a batch must: nothing left unread)
    return HttpResponse(b'{"status": 1}', content_type="application/json")


def _pooled_client() -> httpx.Client:
    """Built as consent_service.proxy.upstream builds the proxy's client."""
    proxy = conf()
    return httpx.Client(
        timeout=httpx.Timeout(proxy.proxy_read_timeout, connect=proxy.proxy_connect_timeout),
        limits=httpx.Limits(
            max_connections=proxy.proxy_pool_size,
            max_keepalive_connections=proxy.proxy_pool_size,
        ),
        follow_redirects=False,
        trust_env=False,
    )


BLIND_CLIENT = _pooled_client()  # one per process: gunicorn imports the URLconf per worker
BLIND_HEADERS = ("Content-Type", "User-Agent")


@csrf_exempt
def blind(request: HttpRequest, path: str) -> HttpResponse:
    headers = {name: request.headers[name] for name in BLIND_HEADERS if name in request.headers}
    upstream = BLIND_CLIENT.post(
        f"{settings.POSTHOG_HOST}/{path}", content=request.body, headers=headers
    )
    return HttpResponse(
        upstream.content,
        status=upstream.status_code,
        content_type=upstream.headers.get("content-type"),
    )


@csrf_exempt
def naive(request: HttpRequest, path: str) -> HttpResponse:
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in ("host", "content-length")
    }
    with httpx.Client() as client:
        upstream = client.request(
            request.method or "GET",
            f"{settings.POSTHOG_HOST}/{path}",
            params=request.GET,
            headers=headers,
            content=request.body,
        )
    return HttpResponse(
        upstream.content,
        status=upstream.status_code,
        content_type=upstream.headers.get("content-type"),
    )


urlpatterns = [
    path("bench/hello/", hello, name="bench-hello"),
    re_path(r"^bench/bare/(?P<path>.*)$", bare, name="bench-bare"),
    re_path(r"^bench/blind/(?P<path>.*)$", blind, name="bench-blind"),
    re_path(r"^bench/naive/(?P<path>.*)$", naive, name="bench-naive"),
    path("", include(product_urls)),
]

handler400 = product_urls.handler400
handler404 = product_urls.handler404
handler500 = product_urls.handler500
