"""The services tier's settings: each long-running service, their rollout, the API load
balancer, and the weekday peak they scale for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.common import peak_window
from components.common.peak_window import PeakWindow
from stack_config.base import KeyedError, Section, no_duplicates, pinned_tag

_SERVICE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_CRON_DAYS = re.compile(r"^[0-6](-[0-6])?(,[0-6](-[0-6])?)*$")

#: `postgres` is the read-write role at the proxy; `postgres-read` the read-only one at the reader.
DataStore = Literal["postgres", "postgres-read", "rabbitmq", "redis"]
#: Names the data tier keeps for its own clients (the drill's cache keys and broker user).
RESERVED_SERVICE_NAMES = ("drill",)
#: Same values as components.services.services.Rollout (a test keeps them equal).
ServicesRollout = Literal["await", "first-deploy"]


class ServiceConfig(BaseModel):
    """One long-running service (an API service or the storage API), an item of `scanner:services`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    name: str
    """DNS label, 1-40 characters: the Deployment, Service and ECR repository `scanner/<name>`."""
    image_tag: str
    """Immutable tag of the service's image in its ECR repository."""
    port: int = Field(ge=1024, le=65535)
    """Container port the service listens on (unprivileged: the pods run as non-root)."""
    cpu_millicores: int = Field(default=500, ge=50, le=16000)
    """CPU request and limit per pod, millicores. Default 500."""
    memory_mib: int = Field(default=1024, ge=64, le=65536)
    """Memory request and limit per pod, MiB. Default 1024."""
    min_replicas: PositiveInt
    """Replica floor off-peak and at weekends; at least one per zone."""
    peak_min_replicas: PositiveInt | None = None
    """Replica floor during the weekday peak window. Default minReplicas."""
    max_replicas: PositiveInt
    """Most replicas the autoscaler runs."""
    target_cpu_percent: int = Field(default=70, ge=10, le=95)
    """Average CPU use (of the request) the autoscaler aims for. Default 70."""
    health_path: str = "/healthz"
    """HTTP path of the readiness and liveness probes (and the load balancer's health check)."""
    ingress_path: str | None = None
    """Path prefix routed to the service by the API load balancer. Default none: in-cluster only."""
    data_access: tuple[DataStore, ...] = ()
    """Data stores the service gets a user of its own in, whose secret only its identity reads:
    postgres (read-write role), postgres-read (read-only role, at the reader), rabbitmq
    (publishes scan requests), redis (its own keys). Default none."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SERVICE_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a service name: 1-40 lower-case letters, digits or '-', starting with a letter"
            )
        if value in RESERVED_SERVICE_NAMES:
            raise ValueError(f"{value!r} is reserved for the data tier's own clients; choose another service name")
        return value

    @field_validator("image_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return pinned_tag(value)

    @field_validator("health_path", "ingress_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_PATH.match(value):
            raise ValueError(f"{value!r} is not an absolute HTTP path such as '/healthz'")
        return value

    @field_validator("data_access")
    @classmethod
    def _stores(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return no_duplicates(value)

    @model_validator(mode="after")
    def _replica_range(self) -> ServiceConfig:
        if self.peak_floor < self.min_replicas:
            raise KeyedError("peakMinReplicas", f"{self.peak_floor} is below minReplicas {self.min_replicas}")
        if self.max_replicas < self.peak_floor:
            raise KeyedError("maxReplicas", f"{self.max_replicas} is below the replica floor {self.peak_floor}")
        return self

    @property
    def peak_floor(self) -> int:
        return self.peak_min_replicas if self.peak_min_replicas is not None else self.min_replicas


class ServicesSection(Section):
    services: tuple[ServiceConfig, ...] = ()
    """Long-running services (API services, storage API) on the services pool, spread over every zone. Default none."""
    services_rollout: ServicesRollout = "await"
    """`await` (default): `pulumi up` waits until every service is ready. `first-deploy`: services
    are declared without waiting, for the first `up`, before their images are pushed."""
    api_ingress_scheme: Literal["internal", "internet-facing"] = "internal"
    """Scheme of the API load balancer: `internal` (default, reachable from the VPC) or
    `internet-facing` (needs apiCertificateArn)."""
    api_certificate_arn: str | None = None
    """ACM certificate of the API load balancer's HTTPS listener (same region). Default none: HTTP inside the VPC."""
    peak_days: str = "1-5"
    """Days of the weekday peak, as a cron day-of-week field (0 = Sunday). Default 1-5 (Monday to Friday)."""
    peak_start_hour_utc: int = Field(default=7, ge=0, le=22)
    """Hour (UTC) the peak window opens. Default 7."""
    peak_end_hour_utc: int = Field(default=19, ge=1, le=23)
    """Hour (UTC) the peak window closes. Default 19."""

    @field_validator("peak_days")
    @classmethod
    def _peak_days(cls, value: str) -> str:
        if not _CRON_DAYS.match(value):
            raise ValueError(f"{value!r} is not a cron day-of-week field of digits 0-6 such as '1-5' or '1,3,5'")
        peak_window.day_numbers(value)
        return value

    @field_validator("api_certificate_arn")
    @classmethod
    def _certificate(cls, value: str | None) -> str | None:
        if value is not None and not _CERTIFICATE_ARN.match(value):
            raise ValueError(
                f"{value!r} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"
            )
        return value

    def problems(self) -> Iterator[KeyedError]:
        if self.peak_end_hour_utc <= self.peak_start_hour_utc:
            yield KeyedError(
                "peakEndHourUtc",
                f"{self.peak_end_hour_utc} is not after peakStartHourUtc "
                f"{self.peak_start_hour_utc} (the window is one stretch of a day, UTC)",
            )
        seen: set[str] = set()
        for index, service in enumerate(self.services):
            key = f"services[{index}]"
            if service.name in seen:
                yield KeyedError(f"{key}.name", f"{service.name!r} is listed more than once")
            seen.add(service.name)
            if service.ingress_path is not None:
                clash = [s.name for s in self.services[:index] if s.ingress_path == service.ingress_path]
                if clash:
                    yield KeyedError(f"{key}.ingressPath", f"{service.ingress_path} is already routed to {clash[0]}")
        if self.api_ingress_scheme == "internet-facing" and self.api_certificate_arn is None:
            yield KeyedError(
                "apiIngressScheme",
                "internet-facing needs apiCertificateArn: the API never listens in plain HTTP on the internet",
            )

    @property
    def peak_window(self) -> PeakWindow:
        return PeakWindow(self.peak_days, self.peak_start_hour_utc, self.peak_end_hour_utc)

    @property
    def pool_demand(self) -> tuple[float, float]:
        """vCPUs and GiB of memory the services ask for at their maxima."""
        return (
            sum(s.max_replicas * s.cpu_millicores for s in self.services) / 1000,
            sum(s.max_replicas * s.memory_mib for s in self.services) / 1024,
        )
