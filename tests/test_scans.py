"""How a scan job gets its source: the job template (a pure function), the repository cache,
the token pool, the registry; and the dashboard CDN."""

import json

import pytest

from components import karpenter_plan
from components.repo_cache import tls_only_policy
from components.registry import lifecycle_policy
from components.scan_job import (
    DO_NOT_DISRUPT,
    FETCH_SCRIPT,
    MAX_SCAN_MINUTES,
    SCAN_GID,
    SCAN_UID,
    ScanJobArgs,
    active_deadline_seconds,
    scan_job_spec,
)
from conftest import by_urn, of_type, one, run

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def plain(value):
    if isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
        return value["value"]
    return value


# ----- the job template, as a pure function -------------------------------------------------------

@pytest.fixture(scope="module")
def job():
    return scan_job_spec(ScanJobArgs(engine="sast", image="123.dkr.ecr.us-east-1.amazonaws.com/scanner/sast:1.4.2",
                                     git_image="123.dkr.ecr.us-east-1.amazonaws.com/scanner/git-fetch:2.51",
                                     cache_claim="repo-cache", service_account="scan-engine",
                                     env={"QUEUE": "scans"}))


def test_job_is_never_disrupted_by_consolidation(job):
    assert job.template.metadata.annotations == {DO_NOT_DISRUPT: "true"}


def test_job_runs_only_on_the_spot_scan_pool(job):
    spec = job.template.spec
    assert spec.node_selector == {karpenter_plan.POOL_LABEL: karpenter_plan.SCAN_POOL}
    [toleration] = spec.tolerations
    assert (toleration.key, toleration.value, toleration.effect) == (
        karpenter_plan.SCAN_TAINT["key"], karpenter_plan.SCAN_TAINT["value"], karpenter_plan.SCAN_TAINT["effect"])


def test_job_deadline_covers_the_longest_scan_and_finished_jobs_are_cleaned_up(job):
    assert job.active_deadline_seconds == active_deadline_seconds() > MAX_SCAN_MINUTES * 60
    assert job.active_deadline_seconds <= (MAX_SCAN_MINUTES + 10) * 60
    assert job.ttl_seconds_after_finished > 0
    # A node taken away (spot, consolidation) does not count as a failure of the scan.
    ignore = job.pod_failure_policy.rules[0]
    assert ignore.action == "Ignore" and ignore.on_pod_conditions[0].type == "DisruptionTarget"


def test_job_mounts_the_cache_and_fetches_before_scanning(job):
    spec = job.template.spec
    [cache] = [v for v in spec.volumes if v.name == "repo-cache"]
    assert cache.persistent_volume_claim.claim_name == "repo-cache"
    assert [c.name for c in spec.init_containers] == ["claim", "fetch"]
    fetch = spec.init_containers[1]
    assert "/cache" in {m.mount_path for m in fetch.volume_mounts}
    [scan] = spec.containers
    [scan_cache] = [m for m in scan.volume_mounts if m.name == "repo-cache"]
    assert scan_cache.read_only is True  # only the fetch step writes the shared cache
    assert spec.service_account_name == "scan-engine" and spec.restart_policy == "Never"
    [request] = [v for v in spec.volumes if v.name == "request"]
    assert request.empty_dir.medium == "Memory"  # the claimed request carries a GitHub token


def test_fetch_is_shallow_single_branch_and_locked_per_repository():
    assert 'flock -w 900 9' in FETCH_SCRIPT and '/cache/locks/${REPO_KEY}.lock' in FETCH_SCRIPT
    assert "fetch --quiet --depth=1 --no-tags origin \"+${REPO_REF}" in FETCH_SCRIPT
    # The lock is released before the (slow) extraction into the pod's own volume.
    assert FETCH_SCRIPT.index("flock -u 9") < FETCH_SCRIPT.index("git -C \"$mirror\" archive")


def test_job_runs_as_the_cache_owner_without_privileges(job):
    security = job.template.spec.security_context
    assert (security.run_as_user, security.run_as_group, security.run_as_non_root) == (SCAN_UID, SCAN_GID, True)
    for container in [*job.template.spec.init_containers, *job.template.spec.containers]:
        assert container.security_context.allow_privilege_escalation is False
        assert container.resources.requests["memory"]


# ----- repository cache ----------------------------------------------------------------------------

def test_file_system_is_regional_encrypted_elastic_and_tiered(prod_update):
    fs = one(prod_update, "aws:efs/fileSystem:FileSystem")
    inputs = fs["inputs"]
    assert "availabilityZoneName" not in inputs
    assert inputs["encrypted"] is True and inputs["kmsKeyId"] == one(prod_update, "aws:kms/key:Key", "repo-cache-key")["outputs"]["arn"]
    assert inputs["throughputMode"] == "elastic"
    assert inputs["lifecyclePolicies"] == [{"transitionToIa": "AFTER_30_DAYS"},
                                           {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"}]
    backup = one(prod_update, "aws:efs/backupPolicy:BackupPolicy")["inputs"]
    assert backup == {"fileSystemId": fs["id"], "backupPolicy": {"status": "ENABLED"}}
    assert fs["protect"] is True and fs["retainOnDelete"] is True


def test_mount_target_in_every_zone_open_only_to_the_nodes_on_nfs(prod_update):
    resources = by_urn(prod_update)
    targets = of_type(prod_update, "aws:efs/mountTarget:MountTarget")
    zones = sorted(resources[t["propertyDependencies"]["subnetId"][0]]["inputs"]["availabilityZone"] for t in targets)
    assert zones == ZONES
    [sg] = [s for s in of_type(prod_update, "aws:ec2/securityGroup:SecurityGroup") if s["name"] == "repo-cache-mount"]
    [rule] = sg["inputs"]["ingress"]
    assert (rule["fromPort"], rule["toPort"]) == (2049, 2049)
    assert rule["securityGroups"] == [one(prod_update, "aws:ec2/tag:Tag")["inputs"]["resourceId"]]
    assert all(t["inputs"]["securityGroups"] == [sg["id"]] for t in targets)


def test_file_system_policy_refuses_mounts_without_tls(prod_update):
    fs = one(prod_update, "aws:efs/fileSystem:FileSystem")
    policy = json.loads(one(prod_update, "aws:efs/fileSystemPolicy:FileSystemPolicy")["inputs"]["policy"])
    assert policy == tls_only_policy(fs["outputs"]["arn"])
    deny = policy["Statement"][0]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_access_point_owns_the_cache_and_the_claim_is_read_write_many(prod_update):
    access_point = one(prod_update, "aws:efs/accessPoint:AccessPoint")["inputs"]
    assert access_point["posixUser"] == {"uid": SCAN_UID, "gid": SCAN_GID}
    assert access_point["rootDirectory"]["creationInfo"]["ownerUid"] == SCAN_UID
    volume = one(prod_update, "kubernetes:core/v1:PersistentVolume")["inputs"]["spec"]
    fs = one(prod_update, "aws:efs/fileSystem:FileSystem")
    assert volume["csi"]["volumeHandle"] == f"{fs['id']}::{one(prod_update, 'aws:efs/accessPoint:AccessPoint')['id']}"
    assert volume["persistentVolumeReclaimPolicy"] == "Retain"
    claim = one(prod_update, "kubernetes:core/v1:PersistentVolumeClaim")["inputs"]
    assert claim["metadata"] == {"name": "repo-cache", "namespace": "scanner-scans"}
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == volume["storageClassName"] == \
        one(prod_update, "kubernetes:storage.k8s.io/v1:StorageClass")["inputs"]["metadata"]["name"]


def test_csi_driver_is_a_pinned_addon_with_pod_identity(prod_update):
    [driver] = [a for a in of_type(prod_update, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "aws-efs-csi-driver"]
    role = one(prod_update, "aws:iam/role:Role", "repo-cache-csi")
    assert driver["inputs"]["podIdentityAssociations"] == [
        {"roleArn": role["outputs"]["arn"], "serviceAccount": "efs-csi-controller-sa"}]
    assert driver["inputs"]["addonVersion"].startswith("v")


def test_scan_nodes_start_tainted_until_the_csi_driver_is_ready(prod_update):
    for pool in of_type(prod_update, "kubernetes:karpenter.sh/v1:NodePool"):
        spec = pool["inputs"]["spec"]["template"]["spec"]
        if pool["inputs"]["metadata"]["name"].startswith("scan-jobs"):
            assert spec["startupTaints"] == [karpenter_plan.EFS_STARTUP_TAINT]


def test_replication_to_the_backup_region_is_opt_in():
    assert of_type(run("prod", "preview"), "aws:efs/replicationConfiguration:ReplicationConfiguration") == []
    record = run("prod", "update", **{"scanner:repoCacheReplication": "true"})
    replication = one(record, "aws:efs/replicationConfiguration:ReplicationConfiguration")["inputs"]
    assert replication["destination"]["region"] == "us-west-2"


# ----- token pool -------------------------------------------------------------------------------

def test_token_pool_has_no_value_in_the_program_and_only_the_scan_role_reads_it(prod_update):
    pool = one(prod_update, "aws:secretsmanager/secret:Secret", "scan-access-github-tokens")
    versions = [v for v in of_type(prod_update, "aws:secretsmanager/secretVersion:SecretVersion")
                if pool["urn"] in v["dependencies"]]
    assert versions == []  # tokens are put in by operators, never through the stack's state
    role = one(prod_update, "aws:iam/role:Role", "scan-access-role")
    policy = json.loads(one(prod_update, "aws:secretsmanager/secretPolicy:SecretPolicy")["inputs"]["policy"])
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "secretsmanager:GetSecretValue"
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalArn": role["outputs"]["arn"]}}
    trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
    assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == "scan-engine"
    association = one(prod_update, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "scan-access-identity")["inputs"]
    assert (association["namespace"], association["serviceAccount"]) == ("scanner-scans", "scan-engine")
    reads = json.loads(one(prod_update, "aws:iam/rolePolicy:RolePolicy", "scan-access-secrets")["inputs"]["policy"])
    assert pool["outputs"]["arn"] in reads["Statement"][0]["Resource"]


# ----- registry ---------------------------------------------------------------------------------

def test_every_engine_has_an_immutable_scanned_encrypted_repository(prod_update):
    repositories = {r["inputs"]["name"]: r["inputs"] for r in of_type(prod_update, "aws:ecr/repository:Repository")}
    assert set(repositories) == {"scanner/sast", "scanner/secrets", "scanner/dependencies", "scanner/git-fetch"}
    for repository in repositories.values():
        assert repository["imageTagMutability"] == "IMMUTABLE"
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    for policy in of_type(prod_update, "aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        assert json.loads(policy["inputs"]["policy"]) == lifecycle_policy(30, 7)
    replication = one(prod_update, "aws:ecr/replicationConfiguration:ReplicationConfiguration")["inputs"]
    rule = replication["replicationConfiguration"]["rules"][0]
    assert rule["destinations"] == [{"region": "us-west-2", "registryId": "123456789012"}]


def test_lifecycle_rule_for_any_tag_comes_last():
    rules = lifecycle_policy(30, 7)["rules"]
    assert rules[-1]["selection"]["tagStatus"] == "any"
    assert rules[-1]["rulePriority"] == max(r["rulePriority"] for r in rules)


# ----- dashboard CDN ------------------------------------------------------------------------------

def test_assets_bucket_is_private_versioned_encrypted_and_logged(prod_update):
    bucket = one(prod_update, "aws:s3/bucket:Bucket", "dashboard-assets")
    block = one(prod_update, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "dashboard-assets")["inputs"]
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    versioning = one(prod_update, "aws:s3/bucketVersioning:BucketVersioning", "dashboard-assets")["inputs"]
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    logging = one(prod_update, "aws:s3/bucketLogging:BucketLogging", "dashboard-assets")["inputs"]
    assert logging["targetBucket"] == one(prod_update, "aws:s3/bucket:Bucket", "dashboard-logs")["id"]
    assert bucket["protect"] is True


def test_distribution_is_https_only_compressed_with_headers_and_spa_fallback(prod_update):
    distribution = one(prod_update, "aws:cloudfront/distribution:Distribution")["inputs"]
    behavior = distribution["defaultCacheBehavior"]
    assert behavior["viewerProtocolPolicy"] == "redirect-to-https" and behavior["compress"] is True
    headers = one(prod_update, "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    assert behavior["responseHeadersPolicyId"] == headers["id"]
    assert headers["inputs"]["securityHeadersConfig"]["strictTransportSecurity"]["accessControlMaxAgeSec"] >= 31536000
    errors = {e["errorCode"]: e for e in distribution["customErrorResponses"]}
    assert set(errors) == {403, 404}  # a missing object is a 403 without s3:ListBucket
    assert all(e["responseCode"] == 200 and e["responsePagePath"] == "/index.html" for e in errors.values())
    assert distribution["priceClass"] == "PriceClass_100"
    [origin] = distribution["origins"]
    assert origin["originAccessControlId"] == one(prod_update, "aws:cloudfront/originAccessControl:OriginAccessControl")["id"]
    assert distribution["loggingConfig"]["bucket"].endswith(".s3.amazonaws.com")


def test_bucket_policy_names_the_distribution_without_a_dependency_cycle(prod_update):
    distribution = one(prod_update, "aws:cloudfront/distribution:Distribution")
    policy_record = one(prod_update, "aws:s3/bucketPolicy:BucketPolicy")
    policy = json.loads(policy_record["inputs"]["policy"])
    assert policy["Statement"][0]["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution["outputs"]["arn"]}}
    assert distribution["urn"] in policy_record["dependencies"]
    assert policy_record["urn"] not in distribution["dependencies"]


def test_custom_domain_gets_a_validated_us_east_1_certificate_and_tls_1_2():
    record = run("prod", "update", **{"scanner:dashboardDomain": "dashboard.example.com",
                                      "scanner:dashboardHostedZoneId": "Z0123456789ABCDEFGHIJ",
                                      "scanner:dashboardWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/dash/abc"})
    certificate = one(record, "aws:acm/certificate:Certificate")["inputs"]
    assert certificate["region"] == "us-east-1" and certificate["validationMethod"] == "DNS"
    distribution = one(record, "aws:cloudfront/distribution:Distribution")["inputs"]
    assert distribution["aliases"] == ["dashboard.example.com"]
    assert distribution["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert distribution["webAclId"].endswith("global/webacl/dash/abc")
    assert {r["inputs"]["type"] for r in of_type(record, "aws:route53/record:Record")
            if r["inputs"]["name"] == "dashboard.example.com"} == {"A", "AAAA"}
