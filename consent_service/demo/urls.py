from __future__ import annotations

from django.urls import path

from consent_service.demo.views import demo

app_name = "demo"
urlpatterns = [path("", demo, name="index")]
