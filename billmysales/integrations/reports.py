"""The answer of "Probar conexión" for stores and billers alike: one item per thing checked, in words."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckItem:
    label: str
    ok: bool | None  # None: could not be checked, said plainly in ``detail``
    detail: str


@dataclass(frozen=True)
class ConnectionReport:
    items: tuple[CheckItem, ...]

    @property
    def ok(self) -> bool:
        return all(item.ok is not False for item in self.items)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "items": [{"label": i.label, "ok": i.ok, "detail": i.detail} for i in self.items]}
