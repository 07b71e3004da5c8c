"""Policy unit layer for the scans tier (repository cache, dashboard buckets, registry, scan Jobs):
one policy, in process, on the recorded prod stack with one hand-made edit; the whole-program
faults stay in test_*.py (test_storage_policies.py, test_scan_scaling.py)."""

import json

import pytest
from conftest import DELETE, UNKNOWN, assert_refused, drop, named, run, set_value, unit_cases, verdict

FS = "aws:efs/fileSystem:FileSystem"
MOUNT = "aws:efs/mountTarget:MountTarget"
SUBNET = "aws:ec2/subnet:Subnet"
BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
REPO = "aws:ecr/repository:Repository"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
POOL = "kubernetes:karpenter.sh/v1:NodePool"
TEMPLATE = "spec.jobTargetRef.template"
MODES = ["preview", "update"]


def setting(type_, name, path, value):
    return lambda record: set_value(record, type_, name, path, value)


def mount_in_zone_of(target_zone, subnet_zone, by_dependency=True):
    """The mount target of `target_zone` placed in the private subnet of `subnet_zone`: by its
    dependency and (once ids are known) its id, or by its id alone."""

    def edit(record):
        [target] = named(record, MOUNT, f"repo-cache-mount-{target_zone}")
        [subnet] = named(record, SUBNET, f"network-private-{subnet_zone}")
        if by_dependency:
            target["propertyDependencies"]["subnetId"] = [subnet["urn"]]
        if "id" in subnet["outputs"]:
            set_value(record, MOUNT, target["name"], "subnetId", subnet["outputs"]["id"])

    return edit


def public_access_block_on_assets(record):
    """Copy-paste: the logs bucket's block is declared on the assets bucket."""
    [assets] = named(record, "aws:s3/bucket:Bucket", "dashboard-assets")
    [block] = named(record, BLOCK, "dashboard-logs")
    block["propertyDependencies"]["bucket"] = [assets["urn"]]


def scan_cpu(quantity):
    return setting(SCALED_JOB, "scan-scaling-*", f"{TEMPLATE}.spec.containers.0.resources.requests.cpu", quantity)


CASES = {
    "efs-mount-target-every-az": [
        (
            "no-target-in-c",
            lambda r: drop(r, MOUNT, "repo-cache-mount-us-east-1c"),
            "has no mount target in us-east-1c",
        ),
        ("b-target-in-a-subnet", mount_in_zone_of("us-east-1b", "us-east-1a"), "has no mount target in us-east-1b"),
        (
            "b-target-with-id-of-a-subnet",
            mount_in_zone_of("us-east-1b", "us-east-1a", by_dependency=False),
            "has no mount target in us-east-1b",
        ),
    ],
    "efs-not-one-zone": [
        ("one-zone-in-b", setting(FS, "repo-cache-fs", "availabilityZoneName", "us-east-1b"), "One Zone storage"),
    ],
    "efs-encrypted": [
        ("encryption-off", setting(FS, "repo-cache-fs", "encrypted", False), "not encrypted at rest"),
        ("encryption-left-out", setting(FS, "repo-cache-fs", "encrypted", DELETE), "not encrypted at rest"),
    ],
    "s3-private-and-encrypted": [
        (
            "logs-public-acls-honoured",
            setting(BLOCK, "dashboard-logs", "ignorePublicAcls", False),
            "Bucket 'dashboard-logs' does not block public access",
        ),
        (
            "block-declared-on-other-bucket",
            public_access_block_on_assets,
            "Bucket 'dashboard-logs' does not block public access",
        ),
        (
            "logs-without-sse",
            lambda r: drop(r, SSE, "dashboard-logs"),
            "Bucket 'dashboard-logs' has no server-side encryption configuration",
        ),
    ],
    "ecr-immutable-scan-on-push": [
        (
            "mutable-with-exclusions",
            setting(REPO, "registry-webhooks", "imageTagMutability", "MUTABLE_WITH_EXCLUSION"),
            "image tags are mutable",
        ),
        ("mutability-left-out", setting(REPO, "registry-api", "imageTagMutability", DELETE), "image tags are mutable"),
        (
            "no-scan-on-push",
            setting(REPO, "registry-git-fetch", "imageScanningConfiguration", DELETE),
            "images are not scanned on push",
        ),
    ],
    "efs-backups-on": [
        (
            "backup-policy-dropped",
            lambda r: drop(r, "aws:efs/backupPolicy:BackupPolicy"),
            "FileSystem 'repo-cache-fs' has no AWS Backup policy ENABLED",
        ),
        (
            "backup-status-left-out",
            setting("aws:efs/backupPolicy:BackupPolicy", None, "backupPolicy.status", DELETE),
            "has no AWS Backup policy ENABLED",
        ),
    ],
    "s3-versioning-on": [
        (
            "logs-versioning-dropped",
            lambda r: drop(r, VERSIONING, "dashboard-logs"),
            "Bucket 'dashboard-logs' is not versioned",
        ),
        (
            "versioning-disabled",
            setting(VERSIONING, "dashboard-assets", "versioningConfiguration.status", "Disabled"),
            "Bucket 'dashboard-assets' is not versioned",
        ),
    ],
    "scan-jobs-on-spot-pool": [
        (
            "secrets-without-selector",
            setting(SCALED_JOB, "scan-scaling-secrets", f"{TEMPLATE}.spec.nodeSelector", DELETE),
            "not pinned to the spot scan pool; set nodeSelector scanner.io/pool: scan-jobs",
        ),
        (
            "sast-on-the-on-demand-pool",
            setting(
                SCALED_JOB,
                "scan-scaling-sast",
                f"{TEMPLATE}.spec.nodeSelector",
                {"karpenter.sh/nodepool": "scan-jobs-on-demand"},
            ),
            "not pinned to the spot scan pool",
        ),
        (
            "disruption-allowed",
            setting(
                SCALED_JOB,
                "scan-scaling-dependencies",
                f"{TEMPLATE}.metadata.annotations",
                {"karpenter.sh/do-not-disrupt": "false"},
            ),
            'lack the karpenter.sh/do-not-disrupt: "true" annotation',
        ),
    ],
    "scaled-job-within-pool-limits": [
        (
            "one-engine-doubled",
            setting(SCALED_JOB, "scan-scaling-sast", "spec.maxReplicaCount", 300),
            "ask for 1200 vCPU",
        ),
        (
            "pool-limit-lowered",
            setting(POOL, "karpenter-pool-scan-jobs", "spec.limits.cpu", "800"),
            "more than the 800 vCPU limit of NodePool 'scan-jobs'",
        ),
        ("requests-in-millicores", scan_cpu("2500m"), "ask for 1125 vCPU"),
    ],
}

#: Cases that only exist in one mode. The id-only mount target needs known ids: in preview the
#: subnet ids are unknown, so only the dependency can place a mount target.
ONE_MODE = {"b-target-with-id-of-a-subnet": "update"}

UNIT_FAULTS = unit_cases(CASES, ONE_MODE)


@pytest.mark.parametrize("policy, edit, message, mode", UNIT_FAULTS)
def test_fault_is_refused(policy, edit, message, mode):
    record = run("prod", mode)
    edit(record)
    assert_refused(record, policy, message)


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("policy", sorted(CASES))
def test_clean_stack_passes(policy, mode, stack):
    assert verdict(run(stack, mode), policy) == []


# ----- settings and edges ---------------------------------------------------------------------------


def test_unknown_encryption_in_preview_is_left_to_the_update():
    """encrypted computed (unknown) on a preview: no verdict, where a missing one is refused."""
    record = run("prod", "preview")
    set_value(record, FS, "repo-cache-fs", "encrypted", UNKNOWN)
    assert verdict(record, "efs-encrypted") == []


def test_dev_scalers_may_fill_the_pool_exactly():
    """dev: 2 engines x 16 Jobs x 2 vCPU = 64 vCPU, the pool's whole limit; one Job more is refused."""
    record = run("dev", "update")
    assert verdict(record, "scaled-job-within-pool-limits") == []
    set_value(record, SCALED_JOB, "scan-scaling-sast", "spec.maxReplicaCount", 17)
    assert_refused(record, "scaled-job-within-pool-limits", "ask for 66 vCPU")


@pytest.mark.parametrize("mode", MODES)
def test_scan_pool_is_read_from_policy_config(mode, tmp_path):
    """The pool renamed consistently (NodePools and selectors): under the default setting the
    selectors are refused and the scalers have no pool to measure; naming it in the policy config
    turns both around."""
    record = run("prod", mode)
    set_value(
        record, POOL, "karpenter-pool-scan-jobs*", "spec.template.metadata.labels", {"scanner.io/pool": "spot-scans"}
    )
    set_value(record, SCALED_JOB, "scan-scaling-*", f"{TEMPLATE}.spec.nodeSelector", {"scanner.io/pool": "spot-scans"})
    set_value(record, SCALED_JOB, "scan-scaling-sast", "spec.maxReplicaCount", 300)
    selectors, scalers = tmp_path / "selectors.json", tmp_path / "scalers.json"
    selectors.write_text(json.dumps({"scan-jobs-on-spot-pool": {"scanPool": "spot-scans"}}))
    scalers.write_text(json.dumps({"scaled-job-within-pool-limits": {"scanPool": "spot-scans"}}))

    assert_refused(record, "scan-jobs-on-spot-pool", "set nodeSelector scanner.io/pool: scan-jobs")
    assert verdict(record, "scan-jobs-on-spot-pool", selectors) == []
    # No NodePool carries the default label: the policy has no limit to measure and says nothing.
    assert verdict(record, "scaled-job-within-pool-limits") == []
    [found] = verdict(record, "scaled-job-within-pool-limits", scalers)
    assert found.level == "mandatory" and "ask for 1200 vCPU" in found.message, found
