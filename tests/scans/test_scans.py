"""How a scan job gets its source: the job template (a pure function), the repository cache,
the token pool, the registry; and the dashboard CDN."""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import by_urn, ingress_of, of_type, one, run

from components.eks import karpenter_plan
from components.scans.registry import lifecycle_policy
from components.scans.repo_cache import tls_only_policy
from components.scans.scan_job import (
    DO_NOT_DISRUPT,
    FETCH_SCRIPT,
    LOCK_WAIT_SECONDS,
    MAX_SCAN_MINUTES,
    SCAN_GID,
    SCAN_UID,
    ScanJobArgs,
    active_deadline_seconds,
    scan_job_spec,
)

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def plain(value):
    if isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
        return value["value"]
    return value


# ----- the job template, as a pure function -------------------------------------------------------


@pytest.fixture(scope="module")
def job():
    return scan_job_spec(
        ScanJobArgs(
            engine="sast",
            image="123.dkr.ecr.us-east-1.amazonaws.com/scanner/sast:1.4.2",
            git_image="123.dkr.ecr.us-east-1.amazonaws.com/scanner/git-fetch:2.51",
            cache_claim="repo-cache",
            service_account="scan-engine",
            env={"QUEUE": "scans"},
        )
    )


def test_job_is_never_disrupted_by_consolidation(job):
    assert job.template.metadata.annotations == {DO_NOT_DISRUPT: "true"}


def test_job_runs_only_on_the_spot_scan_pool(job):
    spec = job.template.spec
    assert spec.node_selector == {karpenter_plan.POOL_LABEL: karpenter_plan.SCAN_POOL}
    [toleration] = spec.tolerations
    assert (toleration.key, toleration.value, toleration.effect) == (
        karpenter_plan.SCAN_TAINT["key"],
        karpenter_plan.SCAN_TAINT["value"],
        karpenter_plan.SCAN_TAINT["effect"],
    )


def test_scans_of_every_engine_prefer_nodes_already_running_scans(job):
    [term] = job.template.spec.affinity.pod_affinity.preferred_during_scheduling_ignored_during_execution
    assert term.pod_affinity_term.topology_key == "kubernetes.io/hostname"
    # The selector matches the label of every scan pod, not only this engine's.
    selector = term.pod_affinity_term.label_selector.match_labels
    assert selector.items() <= job.template.metadata.labels.items() and "scanner.io/engine" not in selector


def test_job_deadline_covers_the_longest_scan_and_finished_jobs_are_cleaned_up(job):
    # The deadline counts from the Job's start: the longest scan plus the longest wait for a
    # repository's lock must fit, with room for claiming and fetching.
    assert job.active_deadline_seconds == active_deadline_seconds() > MAX_SCAN_MINUTES * 60 + LOCK_WAIT_SECONDS
    assert job.active_deadline_seconds <= (MAX_SCAN_MINUTES + 15) * 60
    # ...and a scan node being expired waits longer than that for its running scans.
    [spot, _] = karpenter_plan.scan_pools(ZONES, karpenter_plan.PoolLimits(8, 32), "1m", 25)
    assert int(spot["spec"]["template"]["spec"]["terminationGracePeriod"][:-1]) * 60 > job.active_deadline_seconds
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
    # The scan sees its own checkout only: not the shared cache (other repositories), not the token.
    assert {m.name for m in scan.volume_mounts} == {"work", "tmp"}
    assert spec.service_account_name == "scan-engine" and spec.restart_policy == "Never"
    claim = spec.init_containers[0]
    assert "$(JOB_NAME)" in claim.args  # a re-created pod claims its Job's request again
    [job_name] = [e for e in claim.env if e.name == "JOB_NAME"]
    assert job_name.value_from.field_ref.field_path == "metadata.labels['batch.kubernetes.io/job-name']"
    [request] = [v for v in spec.volumes if v.name == "request"]
    assert request.empty_dir.medium == "Memory"  # the claimed request carries a GitHub token


def test_fetch_is_shallow_single_branch_and_locked_per_repository():
    assert 'flock -w "${LOCK_WAIT_SECONDS:-300}" 9' in FETCH_SCRIPT and '"$cache/locks/$REPO_KEY.lock"' in FETCH_SCRIPT
    assert 'fetch --quiet --depth=1 --no-tags "$REPO_URL" "+$REPO_REF:refs/scan/head"' in FETCH_SCRIPT
    # The lock is released before the checkout into the pod's own volume.
    assert FETCH_SCRIPT.index("flock -u 9") < FETCH_SCRIPT.index("checkout --quiet")


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
    assert (
        inputs["encrypted"] is True
        and inputs["kmsKeyId"] == one(prod_update, "aws:kms/key:Key", "repo-cache-key")["outputs"]["arn"]
    )
    assert inputs["throughputMode"] == "elastic"
    assert inputs["lifecyclePolicies"] == [
        {"transitionToIa": "AFTER_30_DAYS"},
        {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"},
    ]
    backup = one(prod_update, "aws:efs/backupPolicy:BackupPolicy")["inputs"]
    assert backup == {"fileSystemId": fs["id"], "backupPolicy": {"status": "ENABLED"}}
    assert fs["protect"] is True and fs["retainOnDelete"] is True


def test_mount_target_in_every_zone_open_only_to_the_nodes_on_nfs(prod_update):
    resources = by_urn(prod_update)
    targets = of_type(prod_update, "aws:efs/mountTarget:MountTarget")
    zones = sorted(resources[t["propertyDependencies"]["subnetId"][0]]["inputs"]["availabilityZone"] for t in targets)
    assert zones == ZONES
    sg = one(prod_update, "aws:ec2/securityGroup:SecurityGroup", "repo-cache-mount")
    assert ingress_of(prod_update, "repo-cache-mount") == [
        (2049, one(prod_update, "aws:ec2/tag:Tag")["inputs"]["resourceId"])
    ]
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
    # Reserved for its claim, outside any provisioning class: no other claim can take it.
    assert volume["claimRef"] == {"namespace": "scanner-scans", "name": "repo-cache"}
    assert claim["spec"]["storageClassName"] == volume["storageClassName"] == ""
    storage_class = one(prod_update, "kubernetes:storage.k8s.io/v1:StorageClass")["inputs"]
    assert storage_class["provisioner"] == "efs.csi.aws.com" and storage_class["reclaimPolicy"] == "Delete"


def test_csi_driver_is_a_pinned_addon_with_pod_identity(prod_update):
    [driver] = [
        a for a in of_type(prod_update, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "aws-efs-csi-driver"
    ]
    role = one(prod_update, "aws:iam/role:Role", "repo-cache-csi")
    assert driver["inputs"]["podIdentityAssociations"] == [
        {"roleArn": role["outputs"]["arn"], "serviceAccount": "efs-csi-controller-sa"}
    ]
    assert driver["inputs"]["addonVersion"].startswith("v")
    assert (
        json.loads(driver["inputs"]["configurationValues"])["controller"]["nodeSelector"] == karpenter_plan.SYSTEM_LABEL
    )
    agent = [
        a for a in of_type(prod_update, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "eks-pod-identity-agent"
    ]
    assert agent[0]["urn"] in driver["dependencies"]


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
    versions = [
        v
        for v in of_type(prod_update, "aws:secretsmanager/secretVersion:SecretVersion")
        if pool["urn"] in v["dependencies"]
    ]
    assert versions == []  # tokens are put in by operators, never through the stack's state
    engines = ("sast", "secrets", "dependencies")
    roles = {e: one(prod_update, "aws:iam/role:Role", f"scan-access-{e}") for e in engines}
    policy = json.loads(one(prod_update, "aws:secretsmanager/secretPolicy:SecretPolicy")["inputs"]["policy"])
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "secretsmanager:GetSecretValue"
    # Denied to everyone but the engines' roles (a negated condition holds for none of the values).
    assert sorted(deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"]) == sorted(
        r["outputs"]["arn"] for r in roles.values()
    )
    for engine, role in roles.items():
        # One identity per engine: its own service account, its own role.
        trust = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]
        assert trust["Condition"]["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == f"scan-{engine}"
        association = one(prod_update, "aws:eks/podIdentityAssociation:PodIdentityAssociation", f"scan-access-{engine}")
        assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == (
            "scanner-scans",
            f"scan-{engine}",
        )
        reads = json.loads(
            one(prod_update, "aws:iam/rolePolicy:RolePolicy", f"scan-access-{engine}")["inputs"]["policy"]
        )
        assert pool["outputs"]["arn"] in reads["Statement"][0]["Resource"]
        job = one(prod_update, "kubernetes:keda.sh/v1alpha1:ScaledJob", f"scan-scaling-{engine}")
        assert job["inputs"]["spec"]["jobTargetRef"]["template"]["spec"]["serviceAccountName"] == f"scan-{engine}"


# ----- registry ---------------------------------------------------------------------------------


def test_every_engine_has_an_immutable_scanned_encrypted_repository(prod_update):
    repositories = {r["inputs"]["name"]: r["inputs"] for r in of_type(prod_update, "aws:ecr/repository:Repository")}
    # Engines, the fetch step, the services (api, webhooks, storage-api), the drill's probe.
    assert set(repositories) == {
        "scanner/sast",
        "scanner/secrets",
        "scanner/dependencies",
        "scanner/git-fetch",
        "scanner/api",
        "scanner/webhooks",
        "scanner/storage-api",
        "scanner/drill-probe",
    }
    for repository in repositories.values():
        assert repository["imageTagMutability"] == "IMMUTABLE"
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    for policy in of_type(prod_update, "aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        assert json.loads(policy["inputs"]["policy"]) == lifecycle_policy(30, 7)
    replication = one(prod_update, "aws:ecr/replicationConfiguration:ReplicationConfiguration")["inputs"]
    rule = replication["replicationConfiguration"]["rules"][0]
    assert rule["destinations"] == [{"region": "us-west-2", "registryId": "123456789012"}]
    # Replicas are created from a template in the replica region, immutable there too.
    template = one(prod_update, "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate")["inputs"]
    assert (template["region"], template["appliedFors"], template["imageTagMutability"]) == (
        "us-west-2",
        ["REPLICATION"],
        "IMMUTABLE",
    )


def test_lifecycle_rule_for_any_tag_comes_last():
    rules = lifecycle_policy(30, 7)["rules"]
    assert rules[-1]["selection"]["tagStatus"] == "any"
    assert rules[-1]["rulePriority"] == max(r["rulePriority"] for r in rules)


# ----- dashboard CDN ------------------------------------------------------------------------------


def test_assets_bucket_is_private_versioned_encrypted_and_logged(prod_update):
    bucket = one(prod_update, "aws:s3/bucket:Bucket", "dashboard-assets")
    block = one(prod_update, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "dashboard-assets")["inputs"]
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
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
    # Only 404 falls back to the app: the distribution may list the bucket, so a missing object
    # is a 404, and a 403 (say, a WAF block) stays a 403.
    [error] = distribution["customErrorResponses"]
    assert (error["errorCode"], error["responseCode"], error["responsePagePath"]) == (404, 200, "/index.html")
    statements = json.loads(one(prod_update, "aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])["Statement"]
    assert {"s3:GetObject", "s3:ListBucket"} <= {s["Action"] for s in statements if s["Effect"] == "Allow"}
    resources = by_urn(prod_update)
    record = one(prod_update, "aws:cloudfront/distribution:Distribution")
    assert "aws:s3/bucketAcl:BucketAcl" in {resources[u]["type"] for u in record["dependencies"]}
    assert distribution["priceClass"] == "PriceClass_100"
    [origin] = distribution["origins"]
    assert (
        origin["originAccessControlId"]
        == one(prod_update, "aws:cloudfront/originAccessControl:OriginAccessControl")["id"]
    )
    assert distribution["loggingConfig"]["bucket"].endswith(".s3.amazonaws.com")


def test_bucket_policy_names_the_distribution_without_a_dependency_cycle(prod_update):
    distribution = one(prod_update, "aws:cloudfront/distribution:Distribution")
    policy_record = one(prod_update, "aws:s3/bucketPolicy:BucketPolicy")
    policy = json.loads(policy_record["inputs"]["policy"])
    assert policy["Statement"][0]["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution["outputs"]["arn"]}}
    assert distribution["urn"] in policy_record["dependencies"]
    assert policy_record["urn"] not in distribution["dependencies"]


def test_custom_domain_gets_a_validated_us_east_1_certificate_and_tls_1_2():
    record = run(
        "prod",
        "update",
        **{
            "scanner:dashboardDomain": "dashboard.example.com",
            "scanner:dashboardHostedZoneId": "Z0123456789ABCDEFGHIJ",
            "scanner:dashboardWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/dash/abc",
        },
    )
    certificate = one(record, "aws:acm/certificate:Certificate")["inputs"]
    assert certificate["region"] == "us-east-1" and certificate["validationMethod"] == "DNS"
    distribution = one(record, "aws:cloudfront/distribution:Distribution")["inputs"]
    assert distribution["aliases"] == ["dashboard.example.com"]
    assert distribution["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert distribution["webAclId"].endswith("global/webacl/dash/abc")
    assert {
        r["inputs"]["type"]
        for r in of_type(record, "aws:route53/record:Record")
        if r["inputs"]["name"] == "dashboard.example.com"
    } == {"A", "AAAA"}


def test_a_custom_domain_needs_its_hosted_zone():
    from stack_config import ConfigError

    with pytest.raises(ConfigError, match="^scanner:dashboardDomain: needs dashboardHostedZoneId"):
        run("dev", "preview", **{"scanner:dashboardDomain": "dashboard.example.com"})


# ----- the fetch step, run for real against a local repository ---------------------------------------

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("git", "flock", "sh")), reason="needs git, flock and sh on the machine"
)


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True)
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path):
    repo = tmp_path / "origin"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    return repo


def fetch(tmp_path, origin, key="github.com_org_app", token="", env=None):
    request = tmp_path / "request.env"
    request.write_text(f"REPO_URL=file://{origin}\nREPO_REF=main\nREPO_KEY={key}\nGITHUB_TOKEN={token}\n")
    environment = {
        **os.environ,
        "CACHE_DIR": str(tmp_path / "cache"),
        "WORK_DIR": str(tmp_path / "work"),
        "REQUEST_FILE": str(request),
        "HOME": str(tmp_path),
        **(env or {}),
    }
    return subprocess.run(["/bin/sh", "-c", FETCH_SCRIPT], env=environment, capture_output=True, text=True)


@needs_tools
def test_fetch_checks_out_the_requested_commit_and_reuses_the_mirror(tmp_path, origin):
    first = commit(origin, {"app.py": "print(1)\n"}, "one")
    assert fetch(tmp_path, origin).returncode == 0
    assert (tmp_path / "work" / "commit").read_text().strip() == first
    second = commit(origin, {"app.py": "print(2)\n"}, "two")
    result = fetch(tmp_path, origin)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "work" / "commit").read_text().strip() == second
    assert (tmp_path / "work" / "src" / "app.py").read_text() == "print(2)\n"
    # Shallow: the mirror holds the fetched commits, not the whole history of the remote.
    shallow = (tmp_path / "cache" / "repos" / "github.com_org_app.git" / "shallow").read_text()
    assert second in shallow


@needs_tools
def test_the_scanned_repository_cannot_hide_files_from_the_scanner(tmp_path, origin):
    commit(origin, {".gitattributes": "hidden export-ignore\n", "hidden/key.pem": "secret\n"}, "one")
    assert fetch(tmp_path, origin).returncode == 0
    assert (tmp_path / "work" / "src" / "hidden" / "key.pem").exists()


@needs_tools
def test_a_job_killed_mid_fetch_does_not_break_the_cache(tmp_path, origin):
    commit(origin, {"a": "1"}, "one")
    assert fetch(tmp_path, origin).returncode == 0
    mirror = tmp_path / "cache" / "repos" / "github.com_org_app.git"
    (mirror / "shallow.lock").write_text("")  # left by a job killed during a fetch
    commit(origin, {"a": "2"}, "two")
    assert fetch(tmp_path, origin).returncode == 0
    shutil.rmtree(mirror / "objects")  # a mirror damaged beyond a stale lock is rebuilt
    result = fetch(tmp_path, origin)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "work" / "src" / "a").read_text() == "2"


@needs_tools
def test_a_repository_key_cannot_escape_the_cache(tmp_path, origin):
    commit(origin, {"a": "1"}, "one")
    result = fetch(tmp_path, origin, key="../../etc")
    assert result.returncode == 2 and "bad REPO_KEY" in result.stderr


@needs_tools
def test_the_token_goes_to_git_as_basic_auth_in_its_environment(tmp_path, origin):
    commit(origin, {"a": "1"}, "one")
    shim = tmp_path / "bin"
    shim.mkdir()
    seen = tmp_path / "seen"
    (shim / "git").write_text(
        f"#!/bin/sh\necho \"$GIT_CONFIG_KEY_0=$GIT_CONFIG_VALUE_0 $*\" >> {seen}\nexec {shutil.which('git')} \"$@\"\n"
    )
    (shim / "git").chmod(0o755)
    result = fetch(tmp_path, origin, token="ghs_example", env={"PATH": f"{shim}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    expected = base64.b64encode(b"x-access-token:ghs_example").decode()
    lines = seen.read_text().splitlines()
    assert all(line.startswith(f"http.extraHeader=Authorization: Basic {expected} ") for line in lines)
    assert not any("ghs_example" in line.split(" ", 3)[-1] for line in lines)  # never an argument
