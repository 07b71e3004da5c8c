"""The bootstrap program under the offline mocks: what it declares for each stack file, its
switches, and the packs' verdict on it in both modes."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import PACKS, ROOT, _run_program, gate, mandatory, stack_config

from bootstrap import permissions, settings

BOOTSTRAP = ROOT / "bootstrap"
NS = settings.PROJECT
CONNECTION = "arn:aws:codeconnections:us-east-1:123456789012:connection/00000000-0000-4000-8000-000000000000"


def run(stack="prod", mode="update", **overrides):
    config = stack_config(stack, BOOTSTRAP)
    config.update({f"{NS}:{k}" if ":" not in k else k: v for k, v in overrides.items()})
    return _run_program(stack, mode, BOOTSTRAP, config)


def of_type(record, type_):
    return [r for r in record.resources if r["type"] == type_]


def named(record, type_, name):
    (found,) = [r for r in of_type(record, type_) if r["name"] == name]
    return found


def document(value):
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_the_packs_pass_the_bootstrap_stacks(stack, mode):
    record = run(stack, mode)
    result = gate(record, PACKS)
    assert mandatory(result) == []
    assert record.project == "scanner-bootstrap"


def test_prod_declares_the_pipeline(prod=None):
    record = run("prod")
    types = {r["type"] for r in record.resources}
    assert {
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:codebuild/project:Project",
        "aws:codebuild/webhook:Webhook",
    } <= types
    oidc = of_type(record, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0]
    assert oidc["inputs"]["url"] == "https://token.actions.githubusercontent.com"
    assert oidc["inputs"]["clientIdLists"] == ["sts.amazonaws.com"]
    deploy = named(record, "aws:iam/role:Role", "prod-deploy")
    trust = document(deploy["inputs"]["assumeRolePolicy"])
    subjects = trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subjects == ["repo:example-org/scanner-infra:environment:production"]
    assert trust["Statement"][1]["Principal"] == {"AWS": ["arn:aws:iam::123456789012:role/platform-admin"]}
    assert deploy["inputs"]["maxSessionDuration"] == 10800  # the drill's three hours
    preview = named(record, "aws:iam/role:Role", "prod-preview")
    trust = document(preview["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [
        "repo:example-org/scanner-infra:pull_request"
    ]
    assert len(trust["Statement"]) == 1  # operators deploy; they do not preview as pull requests


def test_the_roles_get_the_policies_written_for_their_stack():
    record = run("prod")
    policy = document(named(record, "aws:iam/rolePolicy:RolePolicy", "prod-deploy")["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    # Pulumi.prod.yaml's region and backup-copy region, read from the main stack file.
    assert by_sid["StackServicesInItsRegions"]["Condition"]["StringEquals"]["aws:RequestedRegion"] == [
        "us-east-1",
        "us-west-2",
    ]
    state = by_sid["TheStacksState"]["Resource"]
    assert "arn:aws:s3:::scanner-pulumi-state-123456789012-us-east-1/.pulumi/stacks/scanner/prod.json*" in state
    secrets_key = named(record, "aws:kms/key:Key", "prod-secrets")
    assert by_sid["TheStacksSecretsKey"]["Resource"] == secrets_key["outputs"]["arn"]
    assert permissions.size(policy) < permissions.INLINE_LIMIT


def test_stateful_resources_are_kept():
    record = run("prod")
    for type_, name in (
        ("aws:s3/bucket:Bucket", "state"),
        ("aws:kms/key:Key", "state"),
        ("aws:kms/key:Key", "prod-secrets"),
        ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "github"),
        ("aws:s3/bucketVersioning:BucketVersioning", "state"),
    ):
        resource = named(record, type_, name)
        assert resource["protect"] and resource["retainOnDelete"], f"{type_} {name}"
    bucket = named(record, "aws:s3/bucket:Bucket", "state")
    assert bucket["inputs"]["forceDestroy"] is False
    sse = named(
        record, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "state"
    )
    rule = sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": named(record, "aws:kms/key:Key", "state")["outputs"]["arn"],
    }
    for key in of_type(record, "aws:kms/key:Key"):
        assert key["inputs"]["enableKeyRotation"] is True


def test_unprotected_when_asked():
    record = run("prod", protectStatefulResources="false")
    assert not named(record, "aws:s3/bucket:Bucket", "state")["protect"]


def test_the_bucket_policy_names_existing_roles_and_waits_for_them():
    record = run("prod")
    policy = named(record, "aws:s3/bucketPolicy:BucketPolicy", "state")
    roles = {r["urn"] for r in of_type(record, "aws:iam/role:Role") if r["name"] in ("prod-deploy", "prod-preview")}
    assert roles <= set(policy["dependencies"])
    arns = {
        r["outputs"]["arn"]
        for r in of_type(record, "aws:iam/role:Role")
        if r["name"] in ("prod-deploy", "prod-preview")
    }
    named_in_policy = {
        arn
        for s in document(policy["inputs"]["policy"])["Statement"]
        if s["Principal"] != "*"
        for arn in s["Principal"]["AWS"]
    }
    assert named_in_policy == arns


def test_the_runner_sits_in_the_stacks_private_subnets_and_takes_only_its_workflows():
    record = run("prod")
    project = named(record, "aws:codebuild/project:Project", "prod-runner")
    main_zones = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]["scanner:availabilityZones"]
    subnets = project["inputs"]["vpcConfig"]["subnets"]
    assert len(subnets) == len(main_zones) == 3  # one per zone: the runner survives a zone's loss
    runner_policy = document(named(record, "aws:iam/rolePolicy:RolePolicy", "prod-runner")["inputs"]["policy"])
    interfaces = next(s for s in runner_policy["Statement"] if s["Sid"] == "InterfacesInItsSubnets")
    assert {arn.rsplit("/", 1)[1] for arn in interfaces["Condition"]["ArnEquals"]["ec2:Subnet"]} == set(subnets)
    assert project["inputs"]["name"] == "scanner-prod-deploy"
    assert project["inputs"]["serviceRole"] == named(record, "aws:iam/role:Role", "prod-runner")["outputs"]["arn"]
    hook = named(record, "aws:codebuild/webhook:Webhook", "prod-runner")
    filters = {f["type"]: f["pattern"] for f in hook["inputs"]["filterGroups"][0]["filters"]}
    assert filters == {"EVENT": "WORKFLOW_JOB_QUEUED", "WORKFLOW_NAME": permissions.RUNNER_WORKFLOWS}
    egress = of_type(record, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert [(e["inputs"]["fromPort"], e["inputs"]["toPort"]) for e in egress] == [(443, 443)]
    assert not of_type(record, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")


def test_the_runner_takes_the_workflows_that_ask_for_it():
    """The deploy and drill workflows ask for the runner the bootstrap declares, by its project's
    name, and their names are what the webhook lets through."""
    pattern = re.compile(permissions.RUNNER_WORKFLOWS)
    for workflow in ("deploy.yml", "zone-drill.yml"):
        text = (ROOT / ".github" / "workflows" / workflow).read_text()
        document_ = yaml.safe_load(text)
        assert pattern.match(document_["name"]), workflow
        for job in document_["jobs"].values():
            label = job["runs-on"]
            assert re.fullmatch(
                r"codebuild-scanner-(dev|prod|\$\{\{ inputs\.stack \}\})-deploy-\$\{\{ github\.run_id \}\}-\$\{\{ github\.run_attempt \}\}",
                label,
            ), f"{workflow}: {label}"
    pull_request = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())
    assert not pattern.match(pull_request["name"])


def test_the_runner_reads_outputs_the_main_program_exports(prod_update):
    """The stack reference reads `vpcId` and `subnetIds.private` by zone: the main program
    exports them so (a rename there fails here, not in a user's first runner deploy)."""
    outputs = prod_update.outputs
    assert outputs["vpcId"].startswith("vpc-")
    private = outputs["subnetIds"]["private"]
    assert sorted(private) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert all(v.startswith("subnet-") for v in private.values())


def test_switches():
    record = run("dev")
    assert not of_type(record, "aws:codebuild/project:Project")  # dev's runner comes after its first up
    record = run(
        "dev",
        githubOidcProviderArn="arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
        stateBucket="false",
        secretsKeys="false",
    )
    types = {r["type"] for r in record.resources}
    assert "aws:iam/openIdConnectProvider:OpenIdConnectProvider" not in types
    assert not {"aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:s3/bucketPolicy:BucketPolicy"} & types
    policy = document(named(record, "aws:iam/rolePolicy:RolePolicy", "dev-deploy")["inputs"]["policy"])
    assert not {"TheStacksState", "StateKey", "TheStacksSecretsKey"} & {s["Sid"] for s in policy["Statement"]}
    trust = document(named(record, "aws:iam/role:Role", "dev-deploy")["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {
        "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }


def test_one_account_for_both_stacks():
    record = run(
        "prod",
        stacks=json.dumps(
            [
                {"name": "prod", "githubEnvironment": "production", "runner": True},
                {"name": "dev", "githubEnvironment": "development", "runner": True},
            ]
        ),
    )
    projects = of_type(record, "aws:codebuild/project:Project")
    assert sorted(p["inputs"]["name"] for p in projects) == ["scanner-dev-deploy", "scanner-prod-deploy"]
    # One GitHub credential per region; dev's runner is in dev's region through its own provider.
    credentials = of_type(record, "aws:codebuild/sourceCredential:SourceCredential")
    assert sorted(c["name"] for c in credentials) == ["github-eu-west-1", "github-us-east-1"]
    dev_project = next(p for p in projects if p["inputs"]["name"] == "scanner-dev-deploy")
    assert "aws-eu-west-1" in dev_project["provider"]
    policy = document(named(record, "aws:s3/bucketPolicy:BucketPolicy", "state")["inputs"]["policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {
        "TlsOnly",
        "OnlyItsStateProd",
        "NotTheBucketProd",
        "OnlyItsStateDev",
        "NotTheBucketDev",
    }
    assert CONNECTION == stack_config("prod", BOOTSTRAP)[f"{NS}:githubConnectionArn"]


def test_the_pins_agree_with_the_main_program():
    def pins(path):
        return dict(
            line.split("==") for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")
        )

    main, bootstrap = pins(ROOT / "requirements.txt"), pins(BOOTSTRAP / "requirements.txt")
    assert bootstrap and all(main[name] == version for name, version in bootstrap.items())
