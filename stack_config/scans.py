"""The scan tier's settings: engines, their Jobs and images, and the replication of the cache
and the registry."""

from __future__ import annotations

import re

from pydantic import Field, PositiveInt, field_validator

from stack_config.base import Section, no_duplicates, pinned_tag


class ScansSection(Section):
    scan_max_parallel_jobs: PositiveInt = 100
    """Most Jobs one engine's ScaledJob runs at once. Default 100."""
    scan_job_cpu: PositiveInt = 2
    """vCPUs a scan Job requests. Default 2."""
    scan_job_memory_gib: PositiveInt = 4
    """Memory (GiB) a scan Job requests and is limited to. Default 4."""
    scan_image_tag: str = "1.0.0"
    """Immutable tag of the engine and git-fetch images the scan Jobs run. Default 1.0.0."""
    scan_queue_prefix: str = "scans"
    """Prefix of the engines' queues (`<prefix>.<engine>`). Default scans."""
    scan_queue_delivery_limit: int = Field(default=5, ge=1, le=100)
    """Deliveries of one scan request before it is dead-lettered (`<prefix>.<engine>.dead`). Default 5, 1-100."""
    scan_queue_max_length: int = Field(default=100_000, ge=100, le=10_000_000)
    """Requests a scan queue holds before it refuses publishes (backpressure). Default 100000."""
    scan_engines: tuple[str, ...] = ("sast", "secrets")
    """Scan engines; each gets an ECR repository and a queue-driven ScaledJob. Default sast, secrets."""
    repo_cache_replication: bool = False
    """Replicate the repository cache file system to backupCopyRegion. Default false (the cache refills from GitHub)."""
    registry_replication: bool = False
    """Replicate the scan engine images to backupCopyRegion. Default false."""

    @field_validator("scan_engines")
    @classmethod
    def _engines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one scan engine")
        for engine in value:
            if not re.match(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$", engine) or engine == "git-fetch":
                raise ValueError(
                    f"{engine!r} is not an engine name: 2-32 lower-case letters, digits or '-' "
                    "(and not 'git-fetch', the fetch step's image)"
                )
        return no_duplicates(value)

    @field_validator("scan_image_tag")
    @classmethod
    def _image_tag(cls, value: str) -> str:
        return pinned_tag(value)

    @field_validator("scan_queue_prefix")
    @classmethod
    def _queue_prefix(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_.-]{0,100}$", value):
            raise ValueError(f"{value!r} is not a queue name prefix (lower-case letters, digits, '_', '.', '-')")
        return value

    @property
    def images(self) -> tuple[str, ...]:
        """Images of the scan Jobs: every engine and the fetch step's git image."""
        return (*self.scan_engines, "git-fetch")
