from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from consent_service.proxy.wsgi import proxy_fast_path  # noqa: E402  (after the settings)

# /ph/ skips the site middleware it never uses (see consent_service/proxy/wsgi.py).
application = proxy_fast_path(get_wsgi_application())
