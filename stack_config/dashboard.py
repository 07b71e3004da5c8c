"""The edge tier's settings: the dashboard's CDN, its domain and WAF."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import field_validator

from stack_config.base import KeyedError, Section


class DashboardSection(Section):
    dashboard_price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    """CloudFront price class of the dashboard. Default PriceClass_100 (North America and Europe)."""
    dashboard_domain: str | None = None
    """Custom domain of the dashboard (an ACM certificate in us-east-1 is created for it); required
    in production. Default none."""
    dashboard_hosted_zone_id: str | None = None
    """Route 53 zone of dashboardDomain, for DNS validation and the alias records. Default none."""
    dashboard_web_acl_arn: str | None = None
    """WAFv2 web ACL (CLOUDFRONT scope, us-east-1) for the dashboard. Default none."""

    @field_validator("dashboard_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not re.match(
            r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", value
        ):
            raise ValueError(f"{value!r} is not a lower-case DNS name such as 'dashboard.example.com'")
        return value

    @field_validator("dashboard_hosted_zone_id")
    @classmethod
    def _zone_id(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^Z[A-Z0-9]{1,31}$", value):
            raise ValueError(f"{value!r} is not a Route 53 hosted zone id such as 'Z0123456789ABCDEFGHIJ'")
        return value

    @field_validator("dashboard_web_acl_arn")
    @classmethod
    def _web_acl(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/.+$", value):
            raise ValueError(
                f"{value!r} is not a CLOUDFRONT-scope WAFv2 web ACL ARN "
                "(arn:aws:wafv2:us-east-1:<account>:global/webacl/...)"
            )
        return value

    def problems(self) -> Iterator[KeyedError]:
        if self.dashboard_hosted_zone_id and not self.dashboard_domain:
            yield KeyedError("dashboardHostedZoneId", "is only used with dashboardDomain, which is not set")
        if self.dashboard_domain and not self.dashboard_hosted_zone_id:
            yield KeyedError(
                "dashboardDomain",
                "needs dashboardHostedZoneId: CloudFront takes only an issued "
                "certificate, and the program validates it through that zone",
            )
