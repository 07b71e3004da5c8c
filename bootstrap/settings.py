"""The bootstrap stack's configuration: one validated model, one line per problem, read before
any resource is declared.

The main stacks it serves are named, not described: each one's region and backup-copy region
are read from the main program's own stack file (`Pulumi.<stack>.yaml` beside this folder), so
the deploy role's regions can never disagree with what the stack deploys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pulumi
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT = "scanner-bootstrap"
MAIN_DIR = Path(__file__).resolve().parent.parent

_REPOSITORY = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_OIDC_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_STACK = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
#: A GitHub environment name: up to 255 characters, no comma or semicolon (it lands in an OIDC
#: subject claim, which a comma would make ambiguous in a condition list).
_ENVIRONMENT = re.compile(r"^[^,;:*?]{1,255}$")


class BootstrapConfigError(pulumi.RunError):
    """Bad bootstrap configuration, one line per problem (Pulumi prints it without a traceback)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MainStack(_Model):
    """One stack of the main program the pipeline deploys."""

    name: str
    """The main program's stack (`prod`); its `Pulumi.<name>.yaml` must exist."""
    github_environment: str = Field(alias="githubEnvironment")
    """The GitHub environment its deploy job runs in (`production`): the deploy role trusts that
    environment's jobs only."""
    runner: bool = False
    """Declare the in-VPC CodeBuild runner. Needs the stack's VPC, so it is set after the stack's
    first `up`."""
    region: str = ""
    """Read from the stack file."""
    backup_region: str | None = None
    """Read from the stack file (`scanner:backupCopyRegion`)."""
    hosted_zone_id: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _STACK.match(value):
            raise ValueError("must be a Pulumi stack name (letters, digits, _ . -)")
        return value

    @field_validator("github_environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        if not _ENVIRONMENT.match(value) or value != value.strip():
            raise ValueError("must be a GitHub environment name (1-255 characters, none of , ; : * ?)")
        return value

    @property
    def regions(self) -> tuple[str, ...]:
        return (self.region, self.backup_region) if self.backup_region else (self.region,)


class BootstrapConfig(_Model):
    github_repository: str = Field(alias="githubRepository")
    """`owner/name` of the repository whose workflows deploy."""
    stacks: list[MainStack] = Field(min_length=1)
    github_oidc_provider_arn: str | None = Field(default=None, alias="githubOidcProviderArn")
    """The account's GitHub OIDC provider when it exists already (one per account); default: declare it."""
    state_bucket: bool = Field(default=True, alias="stateBucket")
    """A bucket for a self-managed backend (`pulumi login s3://...`); false with Pulumi Cloud."""
    secrets_keys: bool = Field(default=True, alias="secretsKeys")
    """A KMS key per stack for its `awskms://` secrets provider; false to keep passphrases."""
    operator_role_arns: list[str] = Field(default_factory=list, alias="operatorRoleArns")
    """Roles that may assume the deploy roles from outside GitHub (the first deploy)."""
    github_connection_arn: str | None = Field(default=None, alias="githubConnectionArn")
    """The CodeConnections connection to GitHub the runners use (created and authorised in the
    console: its handshake cannot be declared). Needed when a stack has `runner: true`."""
    main_stack_organization: str = Field(default="organization", alias="mainStackOrganization")
    """The organization part of the main stacks' names (`organization` on a self-managed backend)."""
    runner_compute_type: Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"] = Field(
        default="BUILD_GENERAL1_MEDIUM", alias="runnerComputeType"
    )
    """CodeBuild compute of the runners. Default BUILD_GENERAL1_MEDIUM (4 vCPU, 7 GiB: a `pulumi up`
    of the main program with its packs)."""
    protect_stateful_resources: bool = Field(default=True, alias="protectStatefulResources")
    """Pulumi `protect` and `retainOnDelete` on the state bucket, the keys and the OIDC provider."""
    region: str = ""
    stack: str = ""

    @field_validator("github_repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not _REPOSITORY.match(value):
            raise ValueError("must be owner/name of a GitHub repository")
        return value

    @field_validator("github_oidc_provider_arn")
    @classmethod
    def _oidc(cls, value: str | None) -> str | None:
        if value is not None and not _OIDC_ARN.match(value):
            raise ValueError("must be the ARN of the token.actions.githubusercontent.com OIDC provider")
        return value

    @field_validator("operator_role_arns")
    @classmethod
    def _operators(cls, value: list[str]) -> list[str]:
        for index, arn in enumerate(value):
            if not _ROLE_ARN.match(arn):
                raise ValueError(f"[{index}] {arn!r} is not an IAM role ARN")
        return value

    @field_validator("github_connection_arn")
    @classmethod
    def _connection(cls, value: str | None) -> str | None:
        if value is not None and not _CONNECTION_ARN.match(value):
            raise ValueError("must be a CodeConnections connection ARN")
        return value

    @model_validator(mode="after")
    def _cross(self) -> BootstrapConfig:
        names = [s.name for s in self.stacks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"stacks: {', '.join(twice)} named twice")
        if any(s.runner for s in self.stacks) and not self.github_connection_arn:
            raise ValueError(
                "githubConnectionArn: required when a stack has runner: true (the runner's webhook needs it)"
            )
        return self


def _decode(key: str, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if key in ("stacks", "operatorRoleArns") or raw in ("true", "false"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise BootstrapConfigError(f"{PROJECT}:{key}: not valid JSON") from None
    return raw


def main_stack_file(name: str, main_dir: Path) -> dict[str, Any]:
    """The main stack's region, backup-copy region and hosted zone, from its stack file."""
    path = main_dir / f"Pulumi.{name}.yaml"
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError:
        raise ValueError(f"no main stack file {path.name} beside bootstrap/") from None
    except yaml.YAMLError:
        raise ValueError(f"{path.name} is not valid YAML") from None
    config = document.get("config") or {} if isinstance(document, dict) else {}
    region = config.get("aws:region")
    if not isinstance(region, str) or not region:
        raise ValueError(f"{path.name} sets no aws:region")
    backup = config.get("scanner:backupCopyRegion")
    zone = config.get("scanner:dashboardHostedZoneId")
    return {
        "region": region,
        "backup_region": backup if isinstance(backup, str) and backup != region else None,
        "hosted_zone_id": zone if isinstance(zone, str) else None,
    }


def parse(raw: Mapping[str, Any], stack: str, main_dir: Path = MAIN_DIR) -> BootstrapConfig:
    """Build the model from flat Pulumi config; raises BootstrapConfigError naming every problem."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in sorted(raw.items()):
        namespace, _, name = key.partition(":")
        if namespace == "aws":
            if name == "region":
                values["region"] = value
            continue
        if namespace != PROJECT:
            continue
        try:
            values[name] = _decode(name, value)
        except BootstrapConfigError as exc:
            problems.append(str(exc))
    if not values.get("region"):
        problems.append("aws:region: required key is missing")
    values["stack"] = stack
    stacks = values.get("stacks")
    if isinstance(stacks, list):
        for index, entry in enumerate(stacks):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and _STACK.match(entry["name"]):
                if any(k in entry for k in ("region", "backup_region", "hosted_zone_id")):
                    problems.append(f"{PROJECT}:stacks[{index}]: region is read from the stack file; remove it")
                    continue
                try:
                    entry.update(main_stack_file(entry["name"], main_dir))
                except ValueError as exc:
                    problems.append(f"{PROJECT}:stacks[{index}].name: {exc}")
    if not problems:
        try:
            return BootstrapConfig.model_validate(values)
        except ValidationError as exc:
            problems += _errors(exc)
    raise BootstrapConfigError("\n".join(problems))


def _errors(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"]]
        key = "".join(p if p.startswith("[") else f".{p}" for p in loc).lstrip(".")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown key"
        if not key and ": " in message:
            key, _, message = message.partition(": ")
        lines.append(f"{PROJECT}:{key or 'config'}: {message}")
    return lines


def load_from_pulumi() -> BootstrapConfig:
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse(raw, pulumi.get_stack())
