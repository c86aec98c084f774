"""Is PostHog's persons API usable with our settings? Checked over the network on demand
(`manage.py posthog_check`), stored with its time, read by whoever needs the answer."""

from __future__ import annotations

from consent_service.core.conf import conf
from consent_service.erasure.models import PostHogCheck
from consent_service.posthog.client import ApiCall, Verdict, persons_probe

ADVICE = {
    Verdict.MISCONFIGURED: "no such project or route: check POSTHOG_PROJECT_ID and "
    "POSTHOG_APP_HOST (the app host, e.g. https://eu.posthog.com, not the ingestion host)",
    Verdict.FATAL: "refused: check POSTHOG_PERSONAL_API_KEY (a personal key, phx_…, "
    "with person:read and person:write on this project)",
    Verdict.RETRY: "PostHog could not be reached or is failing: try again later",
}


def posthog_check_run() -> PostHogCheck:
    settings = conf()
    if not (settings.posthog_project_id and settings.posthog_personal_api_key):
        return PostHogCheck.objects.create(
            ok=False,
            detail="POSTHOG_PROJECT_ID and POSTHOG_PERSONAL_API_KEY must both be set.",
        )
    call = persons_probe()
    return PostHogCheck.objects.create(
        ok=call.verdict is Verdict.OK, status_code=call.status, detail=_detail(call)
    )


def posthog_check_latest() -> PostHogCheck | None:
    return PostHogCheck.objects.first()


def _detail(call: ApiCall) -> str:
    where = f"{call.method} {conf().posthog_app_host}{call.path}"
    answer = f"HTTP {call.status}" if call.status else call.error
    if call.verdict is Verdict.OK:
        return f"{where} -> {answer}: the personal key can read this project's persons."
    return f"{where} -> {answer}: {ADVICE.get(call.verdict, 'unexpected answer')}."
