"""A WSGI front for the proxy's hot path: `/ph/` requests skip the middleware they never use.

Every event of every visitor goes through `/ph/`, and the site's middleware (sessions,
auth, CSRF, messages, security headers: the proxy view needs none of them, it is CSRF-exempt
and reads only its own signed visitor cookie) costs more per request than the gate. Wrap
the project's WSGI application:

    application = proxy_fast_path(get_wsgi_application())

Requests under the proxy prefix then run through a Django handler whose middleware is
`CONSENT_PROXY_MIDDLEWARE` (by default only the request id, for logs and error bodies);
everything else goes to the application unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from consent_service.core.conf import conf
from consent_service.core.defaults import setting

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ProxyHandler(WSGIHandler):
    """Django's own handler, built with the proxy's short middleware list."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django reads the list from settings, once, here: at startup, before any request.
        site_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = list(setting("CONSENT_PROXY_MIDDLEWARE"))
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = site_middleware


def proxy_fast_path(application: WSGIApp) -> WSGIApp:
    handler = ProxyHandler()
    prefix = "/" + conf().proxy_prefix.strip("/") + "/"

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(prefix):
            return handler(environ, start_response)
        return application(environ, start_response)

    return dispatch
