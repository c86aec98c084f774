"""The product's URLconf plus /bench/hello/, the do-nothing Django view used as baseline."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from config import urls as product_urls


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("bench/hello/", hello, name="bench-hello"),
    path("", include(product_urls)),
]

handler400 = product_urls.handler400
handler404 = product_urls.handler404
handler500 = product_urls.handler500
