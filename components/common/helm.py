"""Pinned Helm releases: every chart the stack installs goes in the same way, at an exact
version, atomically (a failed install or upgrade rolls back), with ten minutes to settle."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def pinned_chart(
    resource_name: str,
    *,
    chart: str,
    version: str,
    namespace: str,
    opts: pulumi.ResourceOptions,
    values: pulumi.Input[dict[str, Any]] | None = None,
    repo: str | None = None,
    release_name: str | None = None,
    **extra: Any,
) -> k8s.helm.v3.Release:
    """`chart` from `repo` (or an `oci://` chart reference without one) as release `release_name`
    (default: the chart's name)."""
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name or chart.rsplit("/", 1)[-1],
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
        namespace=namespace,
        values=values,
        atomic=True,
        timeout=600,
        opts=opts,
        **extra,
    )
