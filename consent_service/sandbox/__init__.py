"""A PostHog-compatible upstream ("the sandbox") for offline development, tests and benchmarks.

Start it with `consent_service.sandbox.server.SandboxServer` or `manage.py posthog_sandbox`.
"""
