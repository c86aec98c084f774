"""Everything one sandbox instance holds, shared by the handler threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from consent_service.sandbox.cookieless import DailySalts
from consent_service.sandbox.faults import Faults
from consent_service.sandbox.persons import Persons
from consent_service.sandbox.remote import DEFAULT_FLAGS
from consent_service.sandbox.store import Store


@dataclass
class Sandbox:
    store: Store
    faults: Faults
    persons: Persons
    personal_api_key: str
    project_id: str
    project_token: str | None = None  # None: any capture token is accepted
    static_root: Path | None = None
    flags: dict[str, bool | str] = field(default_factory=lambda: dict(DEFAULT_FLAGS))
    # The project setting "Cookieless server hash mode" (cookieless.py); off drops them.
    cookieless_hash_mode: bool = True
    salts: DailySalts = field(default_factory=DailySalts)

    def reset(self) -> None:
        self.store.clear()
        self.persons.clear()
        self.faults.clear()
        self.cookieless_hash_mode = True
