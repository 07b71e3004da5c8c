"""What a real first `pulumi up` of prod needs, proved on the program's own registrations:
the runner reaches the private API, the first stage finishes without images, and each
deploy blocker the documentation points at is settled."""

import json

import pulumi
import pytest
from conftest import by_urn, clean_run, of_type, one, run

from offline import deploy_plan

RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"
DB = "aws:rds/instance:Instance"
EKS = "eks:index:Cluster"
SKIP_AWAIT = "pulumi.com/skipAwait"
PROD_RUNNERS = ["10.40.0.0/20", "10.40.32.0/20", "10.40.64.0/20"]


@pytest.fixture(scope="module")
def first_deploy():
    return clean_run("prod", "update", **{"scanner:servicesRollout": "first-deploy"})


# ----- the deploy runner reaches the private API -------------------------------------------------


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_prod_admits_its_runners_on_443_to_the_cluster_security_group(mode, prod_update, prod_preview):
    record = prod_update if mode == "update" else prod_preview
    eks = one(record, EKS)
    assert eks["inputs"]["endpointPublicAccess"] is False
    rules = [r for r in of_type(record, RULE) if r["name"].startswith("cluster-api-from-")]
    assert sorted(r["inputs"]["cidrIpv4"] for r in rules) == PROD_RUNNERS
    for rule in rules:
        assert (rule["inputs"]["ipProtocol"], rule["inputs"]["fromPort"], rule["inputs"]["toPort"]) == ("tcp", 443, 443)
        # On the security group EKS puts on the control plane's interfaces.
        assert rule["propertyDependencies"]["securityGroupId"] == [eks["urn"]]
        if mode == "update":
            # The group EKS created, which also carries Karpenter's discovery tag.
            assert rule["inputs"]["securityGroupId"] == one(record, "aws:ec2/tag:Tag")["inputs"]["resourceId"]


def test_without_runner_access_the_gate_refuses_a_private_api(monkeypatch):
    from conftest import SECURITY, gate, mandatory

    from components.eks import cluster

    monkeypatch.setattr(cluster, "allow_in", lambda *a, **k: None)
    result = gate(run("prod", "preview"), packs=(SECURITY,))
    assert mandatory(result) == ["eks-private-api-reachable"]
    [message] = {d.message for d in result.diagnostics if d.policy == "eks-private-api-reachable"}
    assert "scanner:clusterApiAccessCidrs" in message


def test_a_rule_on_another_group_is_refused_once_ids_are_known(monkeypatch):
    """The rule still takes its group from the cluster component, but the value is another group."""
    from conftest import SECURITY, gate, mandatory

    from components.common import sg_rules
    from components.eks import cluster

    def elsewhere(name, group, port, **kwargs):
        return sg_rules.allow_in(
            name, pulumi.Output.from_input(group).apply(lambda _: "sg-0123456789abcdef0"), port, **kwargs
        )

    monkeypatch.setattr(cluster, "allow_in", elsewhere)
    assert mandatory(gate(run("prod", "update"), packs=(SECURITY,))) == ["eks-private-api-reachable"]
    assert gate(run("prod", "preview"), packs=(SECURITY,)).passed  # the dependency is all a first preview has


# ----- the first deploy finishes before any image is pushed ---------------------------------------


def _awaited_kinds():
    """What pulumi-kubernetes waits for until pods are ready (Deployment: Available; Service with a
    selector: no endpoint that is not ready). An Ingress waits for its load balancer and for the
    Endpoints objects to exist, not for ready pods."""
    return {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:batch/v1:Job",
        "kubernetes:core/v1:Pod",
        "kubernetes:core/v1:Service",
    }


def _pod_images(inputs):
    spec = ((inputs.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [c.get("image", "") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]


def test_first_deploy_stage_waits_for_no_image_of_its_own_registry(first_deploy):
    repositories = [r["outputs"]["repositoryUrl"] for r in of_type(first_deploy, "aws:ecr/repository:Repository")]
    deployments = {}
    for record in first_deploy.resources:
        if record["type"] == "kubernetes:apps/v1:Deployment":
            images = _pod_images(record["inputs"])
            if any(i.startswith(tuple(repositories)) for i in images):
                deployments[record["inputs"]["metadata"]["name"]] = record
    assert sorted(deployments) == ["api", "storage-api", "webhooks"]
    selected = set(deployments)
    for record in first_deploy.resources:
        if record["type"] not in _awaited_kinds():
            continue
        inputs = record["inputs"]
        annotations = (inputs.get("metadata") or {}).get("annotations") or {}
        needs_image = (
            record["type"] == "kubernetes:core/v1:Service"
            and ((inputs.get("spec") or {}).get("selector") or {}).get("app.kubernetes.io/name") in selected
        ) or any(i.startswith(tuple(repositories)) for i in _pod_images(inputs))
        if needs_image:
            assert annotations.get(SKIP_AWAIT) == "true", record["urn"]
    # Nothing the registry serves is waited for by anything else either: the ScaledJobs start Jobs
    # only when requests arrive, and no Helm chart pulls from this registry.
    for release in of_type(first_deploy, "kubernetes:helm.sh/v3:Release"):
        assert not any(repo in json.dumps(release["inputs"].get("values") or {}) for repo in repositories)


def test_first_deploy_does_not_hold_the_services_for_the_data_tier(first_deploy, prod_update):
    config_map = one(first_deploy, "kubernetes:core/v1:ConfigMap", "data-access-endpoints")["urn"]
    for name in ("services-api", "services-storage-api", "services-webhooks"):
        assert config_map not in one(first_deploy, "kubernetes:apps/v1:Deployment", name)["dependencies"]
        # Once the images exist, a rollout waits for the endpoints its pods read.
        awaited = one(prod_update, "kubernetes:apps/v1:Deployment", name)
        assert SKIP_AWAIT not in (awaited["inputs"]["metadata"].get("annotations") or {})
        assert (
            one(prod_update, "kubernetes:core/v1:ConfigMap", "data-access-endpoints")["urn"] in awaited["dependencies"]
        )


#: Faults of advisory policies through the program: config overrides (policies it should trip,
#: a fragment of their message). The stack still passes; the advisory says what to change.
ADVISORY_FAULTS = {
    "first-deploy-stage": (
        {"scanner:servicesRollout": "first-deploy"},
        {"deployment-rollout-awaited"},
        "set scanner:servicesRollout back to await",
    ),
}


@pytest.mark.gate
@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("fault", sorted(ADVISORY_FAULTS))
def test_advisory_faults_are_reported_and_pass(fault, mode):
    from conftest import PLACEMENT, assert_advisory_fault

    assert_advisory_fault(ADVISORY_FAULTS[fault], mode, (PLACEMENT,))


def test_first_deploy_stage_passes_the_gate_with_an_advisory(capsys, tmp_path):
    from offline import preview

    status = preview.main(
        ["--stack", "prod", "-c", "scanner:servicesRollout=first-deploy", "--diagram", str(tmp_path / "d.md")]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "[advisory] deployment-rollout-awaited: 3 resources" in out


# ----- the settled "likely" items -----------------------------------------------------------------


def test_replica_takes_the_primarys_key_and_copies_tags_to_snapshots(prod_update):
    replica = one(prod_update, DB, "postgres-replica")["inputs"]
    # CreateDBInstanceReadReplica: in the source's region, "don't specify a value for this parameter".
    assert "kmsKeyId" not in replica
    assert replica["copyTagsToSnapshot"] is True and replica["storageEncrypted"] is True


def test_proxy_reaches_secrets_manager_and_the_database_only(prod_update):
    urns = by_urn(prod_update)
    proxy_sg = one(prod_update, SG, "postgres-proxy")
    assert "egress" not in proxy_sg["inputs"] and "ingress" not in proxy_sg["inputs"]
    egress = [r for r in of_type(prod_update, EGRESS) if r["inputs"]["securityGroupId"] == proxy_sg["outputs"]["id"]]
    targets = sorted(
        (r["inputs"]["fromPort"], urns[r["propertyDependencies"]["referencedSecurityGroupId"][0]]["name"])
        for r in egress
    )
    assert targets == [(443, "network-endpoints"), (5432, "postgres-db")]
    assert all("cidrIpv4" not in r["inputs"] for r in egress)


def test_replication_template_encrypts_with_a_role_ecr_can_assume(prod_update):
    template = one(prod_update, "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate")
    role = one(prod_update, "aws:iam/role:Role", "registry-replica-template")
    key = one(prod_update, "aws:kms/key:Key", "registry-replica-key")
    assert template["inputs"]["customRoleArn"] == role["outputs"]["arn"]
    assert template["inputs"]["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": key["outputs"]["arn"]}
    ]
    assert key["inputs"]["region"] == template["inputs"]["region"] == "us-west-2" and key["protect"]
    # The ECR user guide's trust policy, with no condition ECR might not send.
    [trust] = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust == {"Effect": "Allow", "Principal": {"Service": "ecr.amazonaws.com"}, "Action": "sts:AssumeRole"}
    policy = json.loads(
        one(prod_update, "aws:iam/rolePolicy:RolePolicy", "registry-replica-template")["inputs"]["policy"]
    )
    kms = next(s for s in policy["Statement"] if "kms:CreateGrant" in s["Action"])
    assert kms["Resource"] == key["outputs"]["arn"]
    assert (
        one(prod_update, "aws:iam/rolePolicy:RolePolicy", "registry-replica-template")["urn"]
        in template["dependencies"]
    )


def test_efs_driver_waits_for_the_system_nodes_it_runs_on(prod_update):
    addon = one(prod_update, "aws:eks/addon:Addon", "repo-cache-csi-driver")
    assert one(prod_update, "aws:eks/nodeGroup:NodeGroup", "cluster-system")["urn"] in addon["dependencies"]


def test_prod_dashboard_uses_its_own_certificate_with_tls12(prod_update):
    certificate = one(prod_update, "aws:cloudfront/distribution:Distribution")["inputs"]["viewerCertificate"]
    assert certificate.get("cloudfrontDefaultCertificate") in (None, False)
    assert certificate["minimumProtocolVersion"] == "TLSv1.2_2021" and certificate["acmCertificateArn"]


def test_default_cloudfront_certificate_is_refused_in_production(monkeypatch):
    import pulumi_aws as aws
    from conftest import SECURITY, change, gate, mandatory

    change(
        aws.cloudfront.Distribution,
        "dashboard-distribution",
        viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True),
        aliases=None,
    )(monkeypatch)
    result = gate(run("prod", "update"), packs=(SECURITY,))
    assert mandatory(result) == ["cloudfront-https-only"]
    assert any(
        "always accepts TLS 1.0 and 1.1" in d.message and "scanner:dashboardDomain" in d.message
        for d in result.diagnostics
    )


# ----- the data tier does not wait for the cluster -------------------------------------------------


def test_data_tier_security_groups_are_empty_and_wait_for_nothing(prod_update):
    eks = one(prod_update, EKS)["urn"]
    for name in ("postgres-proxy", "postgres-db", "rabbitmq-broker", "redis-cache", "repo-cache-mount"):
        group = one(prod_update, SG, name)
        assert "ingress" not in group["inputs"] and "egress" not in group["inputs"], name
        assert eks not in group["dependencies"], name
    nodes, waits, _ = deploy_plan._nodes(prod_update.resources)

    def upstream(urn, seen=None):
        seen = set() if seen is None else seen
        for dep in waits[urn]:
            if dep not in seen:
                seen.add(dep)
                upstream(dep, seen)
        return seen

    for name in ("postgres-primary", "postgres-replica"):
        assert eks not in upstream(one(prod_update, DB, name)["urn"]), name
    assert eks not in upstream(one(prod_update, "aws:mq/broker:Broker")["urn"])
    assert eks not in upstream(one(prod_update, "aws:elasticache/replicationGroup:ReplicationGroup")["urn"])
