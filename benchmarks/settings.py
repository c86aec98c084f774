"""Settings for benchmarks/config_endpoint.py: the product settings, served plainly.

Plain HTTP on 127.0.0.1 (no secure cookies), DEBUG off (so no query log is kept), rate
limits that never interfere but are still counted (one visitor sends every request), and a
URLconf that adds the hello-world baseline.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-insecure-secret-key-0123456789abcdef")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "0")
os.environ["CONSENT_DEV_TOOLS"] = "1"  # the benchmarks run the PostHog sandbox

from config.settings import *  # noqa: E402,F403

ROOT_URLCONF = "benchmarks.urls"
DEBUG = False
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "127.0.0.1", "localhost"]  # noqa: F405
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
CONSENT_VISITOR_COOKIE_SECURE = False
CONSENT_WRITE_RATE = "1000000/min"
# Far above what the load reaches, but not 0: each request still pays for its checks.
CONSENT_PROXY_RATE_PER_VISITOR = CONSENT_PROXY_RATE_PER_IP = "1000000000/min"
CONSENT_READ_RATE_PER_VISITOR = CONSENT_READ_RATE_PER_IP = "1000000000/min"
