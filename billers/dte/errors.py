"""Errors raised by the DTE core.

``MappingRefused`` is the business answer "this order cannot become this document": it carries a
stable ``code`` for programs, a human ``message`` naming the amounts involved, and ``details`` with the
raw figures, so the order page can show exactly why nothing was emitted.
"""
from __future__ import annotations

from dataclasses import dataclass


class DteError(Exception):
    """Base class of every error the DTE core raises on purpose."""


class MappingRefused(DteError):
    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class InvalidDocument(DteError):
    """A document (e.g. read from LibreDTE-shaped JSON) that cannot be normalised or built."""


class SchemaUnavailable(DteError):
    """The XSD needed for a document type is not where we looked."""


class CafError(DteError):
    """The CAF cannot stamp this document (wrong type, folio out of range, unreadable CAF)."""


@dataclass(frozen=True)
class SchemaError:
    """One XSD validation (or XML parse) error, with the line of the offending element."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"
