"""What every section of the stack configuration shares: the error types, the base model,
and the small parsers more than one section uses."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

import pulumi
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

import catalogue

PROJECT = "scanner"

#: Retention periods CloudWatch Logs accepts (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

#: Range AWS allows beside any primary VPC CIDR and EKS recommends for pod custom networking.
POD_CIDR_RANGE = ipaddress.IPv4Network("100.64.0.0/10")

_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ConfigError(pulumi.RunError):
    """Bad stack configuration, one line per problem. Pulumi prints a RunError's message without
    a traceback."""


class KeyedError(ValueError):
    """One broken rule, with the key (camelCase, relative to its model) a user edits."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class KeyedErrors(ValueError):
    """Every broken cross-field rule of one model: a run reports them all."""

    def __init__(self, errors: list[KeyedError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


class Section(BaseModel):
    """A part of the stack config. Keys stay flat in the stack file (`scanner:natMode`); each
    section owns the keys of its tier, their rules and what is derived from them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def problems(self) -> Iterator[KeyedError]:
        """Rules across this section's own fields (yielded, so one run reports them all)."""
        return iter(())

    @model_validator(mode="after")
    def _section_rules(self) -> Section:
        found = list(self.problems())
        if found:
            raise KeyedErrors(found)
        return self


def catalogue_note() -> str:
    return f"AWS catalogue of {catalogue.GENERATED}; `make catalogue` refreshes it"


def no_duplicates(values: tuple[str, ...]) -> tuple[str, ...]:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"lists {', '.join(duplicates)} more than once")
    return values


def networks(cidrs: tuple[str, ...]) -> Iterator[tuple[str, ipaddress.IPv4Network]]:
    """Each CIDR with its network, strictly parsed (no host bits)."""
    for cidr in cidrs:
        try:
            yield cidr, ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"{cidr!r} is not a valid IPv4 network CIDR ({exc})") from None


def pinned_tag(value: str) -> str:
    if not _IMAGE_TAG.match(value) or value == "latest":
        raise ValueError(f"{value!r} is not a pinned image tag (letters, digits, '_', '.', '-'; not 'latest')")
    return value


def retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{value} is not a retention CloudWatch Logs accepts ({', '.join(map(str, LOG_RETENTION_DAYS))})"
        )
    return value


def offered(value: str, options, what: str) -> str:
    """`value` if the catalogue lists it among `options`, else the error with a did-you-mean."""
    if value not in options:
        close = catalogue.closest(value, options)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"{value!r} is not {what} ({catalogue_note()}){hint}")
    return value
