"""The warning a form shows before saving a duplicate: «Уже есть: ООО «Северный ветер» — открыть /
всё равно сохранить». A duplicate the reader may not see is named by its kind only, without a link."""

from __future__ import annotations

from typing import Any

from multidict import MultiDictProxy

from hub.crm.errors import DuplicateFound
from hub.web.i18n import N_

HIDDEN = {"client": N_("a client you cannot see"), "contact": N_("a contact person you cannot see"),
          "lead": N_("a lead you cannot see")}


def allow_from(form: MultiDictProxy[Any], data: dict[str, Any]) -> None:
    """«всё равно сохранить» resubmits the form with ``allow_duplicate``."""
    if form.get("allow_duplicate"):
        data["allow_duplicate"] = True


def _url(item: dict[str, object]) -> str | None:
    if not item["visible"]:
        return None
    if item["type"] == "client":
        return f"/clients/{item['id']}"
    if item["type"] == "contact":
        return f"/clients/{item['client_id']}?tab=contacts"
    return f"/leads/{item['id']}"


def warning(exc: DuplicateFound) -> dict[str, Any]:
    """The template's ``duplicates``: ``{"found": [{"name", "hidden", "url"}], "may_override"}``."""
    return {"may_override": exc.may_override, "found": [
        {"name": item["name"], "hidden": HIDDEN[str(item["type"])], "url": _url(item)}
        for item in exc.duplicates]}
