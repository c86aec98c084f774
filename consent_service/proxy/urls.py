from __future__ import annotations

import re

from django.urls import URLPattern, re_path

from consent_service.core.conf import conf
from consent_service.proxy.views import proxy


def proxy_urls() -> list[URLPattern]:
    prefix = re.escape(conf().proxy_prefix.strip("/"))
    return [re_path(rf"^{prefix}/(?P<path>.*)$", proxy, name="posthog-proxy")]


# `path("", include("consent_service.proxy.urls"))`: the route carries its prefix, so it is
# included at the root.
urlpatterns = proxy_urls()
