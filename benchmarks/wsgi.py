"""What gunicorn serves in benchmarks/proxy.py: the product's application (config.wsgi,
its /ph/ fast path included) plus /bench/bare/ through a Django handler with no middleware.

The bare handler is Django's own WSGIHandler (request_started/finished signals, URL
resolution against the same ROOT_URLCONF, the view, the response) built with
`MIDDLEWARE = []`, the way consent_service/proxy/wsgi.py builds the proxy's: the cheapest
request a Django view can answer in these workers. Every other path pays one prefix test
more than under config.wsgi.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from config.wsgi import application as product

BARE_PREFIX = "/bench/bare/"


class BareHandler(WSGIHandler):
    """Django's handler with no middleware at all."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django reads the list once, here, when the handler is built.
        site_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = []
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = site_middleware


bare = BareHandler()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "").startswith(BARE_PREFIX):
        return bare(environ, start_response)
    return product(environ, start_response)
