"""Domain errors. The web layer maps them to HTTP statuses; the CLI prints them."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str = "", fields: dict[str, str] | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.fields = fields or {}


class ValidationError(DomainError):
    """Input that cannot be stored; ``fields`` maps each bad field to the reason."""

    code = "validation_failed"

    def __init__(self, fields: dict[str, str], message: str = "invalid input") -> None:
        super().__init__(message, fields)


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class TelephonyUnavailable(DomainError):
    """No PBX to place a call through: not configured, or not connected now."""

    code = "telephony_unavailable"


class OriginateRefused(DomainError):
    """The PBX refused to place the call."""

    code = "originate_failed"


class DuplicateFound(Conflict):
    """The INN, a phone or an e-mail is already another client's, contact person's or lead's.
    ``duplicates``: ``[{"type", "id", "name", "visible", "client_id"}]``; ``may_override``: the actor
    may resend with ``allow_duplicate``."""

    code = "duplicate"

    def __init__(self, duplicates: list[dict[str, object]], may_override: bool) -> None:
        super().__init__("matches an existing record; send allow_duplicate to save anyway")
        self.duplicates = duplicates
        self.may_override = may_override
        self.extra = {"duplicates": duplicates, "may_override": may_override}
