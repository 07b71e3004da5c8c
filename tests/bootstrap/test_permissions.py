"""The pipeline's policies against the main program they serve: every service it declares, every
look-up it makes, every role it passes and policy it attaches is granted, and nothing more; and
the documents are ones IAM takes (moto's validator, the size quotas)."""

from __future__ import annotations

import fnmatch
import json

import boto3
import pytest
from conftest import clean_run
from moto import mock_aws

from bootstrap import permissions

ACCOUNT = "123456789012"
BUCKET = f"scanner-pulumi-state-{ACCOUNT}-us-east-1"


@pytest.fixture(scope="module")
def records():
    return [clean_run(stack, "update") for stack in ("prod", "dev")] + [clean_run("prod", "preview")]


def pipeline(stack="prod", regions=("us-east-1", "us-west-2"), **extra) -> permissions.Pipeline:
    return permissions.Pipeline(
        stack=stack,
        account_id=ACCOUNT,
        partition="aws",
        regions=regions,
        managed_policies=permissions.PROGRAM_MANAGED_POLICIES,
        **{
            "state_bucket": BUCKET,
            "state_key_arn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-1111-4111-8111-111111111111",
            "secrets_key_arn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/22222222-2222-4222-8222-222222222222",
            **extra,
        },
    )


def statements(document: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in document["Statement"]}


def _list(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def allows(document: dict, action: str, resource: str = "*") -> bool:
    """Whether an Allow statement names the action and resource (conditions aside): enough to
    tell a grant that is missing from one that is there."""
    for s in document["Statement"]:
        if s["Effect"] != "Allow":
            continue
        if any(fnmatch.fnmatchcase(action, a) for a in _list(s["Action"])) and any(
            fnmatch.fnmatchcase(resource, r) for r in _list(s["Resource"])
        ):
            return True
    return False


# ----- against the program --------------------------------------------------------------------


def test_every_service_the_program_declares_is_granted_and_no_other(records):
    types = {r["type"] for record in records for r in record.resources if r["custom"]}
    used = permissions.services_of(types)
    assert used == set(permissions.PROGRAM_SERVICES)
    document = permissions.deploy_policy(pipeline(), permissions.PROGRAM_SERVICES)
    granted = {a.split(":")[0] for s in document["Statement"] for a in _list(s["Action"]) if s["Effect"] == "Allow"}
    # Beside the program's services: the look-ups' load balancer and the state bucket.
    assert granted - used == {"elasticloadbalancing"}
    assert used - granted == set()


def test_a_module_the_table_lacks_is_named():
    with pytest.raises(KeyError, match="aws:appmesh/mesh:Mesh: module 'appmesh' has no IAM services"):
        permissions.services_of(["aws:appmesh/mesh:Mesh"])


def test_every_lookup_the_program_makes_is_granted_to_the_preview(records):
    invoked = {token for record in records for token in record.invokes}
    assert invoked and invoked <= set(permissions.PROGRAM_INVOKES)
    document = permissions.preview_policy(pipeline(), invoked)
    for token in invoked:
        for action in permissions.INVOKE_ACTIONS[token]:
            assert allows(document, action), f"{token}: {action} not granted to the preview role"
    # The preview changes nothing: a preview takes no lock on a self-managed backend either.
    writes = [
        a
        for s in document["Statement"]
        for a in _list(s["Action"])
        if not a.split(":")[1].startswith(("Describe", "Get", "List", "Decrypt"))
    ]
    assert writes == []


def test_roles_are_passed_only_to_the_services_they_trust(records):
    trusted = set()
    for record in records:
        for r in record.resources:
            if r["type"] == "aws:iam/role:Role":
                policy = r["inputs"]["assumeRolePolicy"]
                for s in json.loads(policy)["Statement"]:
                    trusted.update(_list(s["Principal"].get("Service", [])))
    # EKS takes the cluster's and the node group's roles without trusting them by name here.
    assert set(permissions.PASSED_TO) == trusted | {"eks.amazonaws.com"}


def test_only_the_managed_policies_the_program_attaches(records):
    attached = {
        r["inputs"]["policyArn"]
        for record in records
        for r in record.resources
        if r["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    }
    aws_managed = {arn.split(":policy/", 1)[1] for arn in attached if arn.startswith("arn:aws:iam::aws:policy/")}
    assert aws_managed == set(permissions.PROGRAM_MANAGED_POLICIES)
    condition = statements(permissions.deploy_policy(pipeline(), permissions.PROGRAM_SERVICES))["AttachKnownPolicies"]
    assert set(condition["Condition"]["ArnLike"]["iam:PolicyARN"]) == {
        *(f"arn:aws:iam::aws:policy/{n}" for n in aws_managed),
        f"arn:aws:iam::{ACCOUNT}:policy/*",
    }


def test_what_the_program_tags_is_what_iam_is_scoped_by(records):
    """The IAM and KMS grants hold only for resources carrying the provider's default tags: if
    the program stopped tagging them so, the deploy role could not manage its own roles."""
    prod = records[0]
    provider = next(r for r in prod.resources if r["type"] == "pulumi:providers:aws" and r["name"] == "aws")
    tags = provider["inputs"]["defaultTags"]
    tags = json.loads(tags) if isinstance(tags, str) else tags
    assert tags["tags"][permissions.PROJECT_TAG] == permissions.PROJECT
    assert tags["tags"][permissions.STACK_TAG] == "prod"
    create = statements(permissions.deploy_policy(pipeline(), permissions.PROGRAM_SERVICES))["CreateTheStacksIam"]
    assert create["Condition"]["StringEquals"] == {"aws:RequestTag/project": "scanner", "aws:RequestTag/stack": "prod"}


def test_the_program_names_its_key_aliases_under_the_stacks_prefix(records):
    aliases = {r["inputs"]["name"] for r in records[0].resources if r["type"] == "aws:kms/alias:Alias"}
    pattern = statements(permissions.deploy_policy(pipeline(), permissions.PROGRAM_SERVICES))["TheStacksAliases"]
    assert aliases and all(
        fnmatch.fnmatchcase(f"arn:aws:kms:us-east-1:{ACCOUNT}:{a}", pattern["Resource"]) for a in aliases
    )


# ----- scope -----------------------------------------------------------------------------------


def test_service_wide_grants_hold_in_the_stacks_regions_only():
    document = permissions.deploy_policy(pipeline(regions=("eu-west-1",)), permissions.PROGRAM_SERVICES)
    by_sid = statements(document)
    assert by_sid["StackServicesInItsRegions"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": ["eu-west-1"]}}
    assert by_sid["GlobalServicesOfTheStack"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": ["us-east-1"]}}
    wide = [
        s for s in document["Statement"] if s["Resource"] == "*" and any(a.endswith(":*") for a in _list(s["Action"]))
    ]
    assert {s["Sid"] for s in wide} == {"StackServicesInItsRegions", "GlobalServicesOfTheStack"}
    for s in wide:
        assert "aws:RequestedRegion" in s["Condition"]["StringEquals"]
        assert not {a for a in _list(s["Action"]) if a.split(":")[0] in ("iam", "kms", "sts", "organizations")}


def test_no_iam_or_kms_action_is_unscoped():
    document = permissions.deploy_policy(pipeline(), permissions.PROGRAM_SERVICES)
    for s in document["Statement"]:
        for action in _list(s["Action"]):
            service, _, name = action.partition(":")
            if service not in ("iam", "kms"):
                continue
            read = name.startswith(("Get", "List"))
            assert read or "Condition" in s or s["Resource"] != "*", f"{s['Sid']}: {action} on * with no condition"
    assert not allows(document, "iam:CreateUser") and not allows(document, "iam:CreateAccessKey")
    assert not allows(document, "iam:PutRolePermissionsBoundary") and not allows(document, "sts:AssumeRole")


def test_a_known_hosted_zone_scopes_route53_to_it():
    zone = "Z0123456789ABCDEFGHIJ"
    scoped = permissions.deploy_policy(pipeline(hosted_zone_id=zone), permissions.PROGRAM_SERVICES)
    assert not allows(scoped, "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/ZOTHER")
    assert allows(scoped, "route53:ChangeResourceRecordSets", f"arn:aws:route53:::hostedzone/{zone}")
    wide = permissions.deploy_policy(pipeline(), permissions.PROGRAM_SERVICES)
    assert allows(wide, "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/ZOTHER")


def test_the_state_bucket_keeps_each_stack_to_its_own_state():
    prod, dev = pipeline("prod"), pipeline("dev", regions=("eu-west-1",))
    roles = {
        "prod": [f"arn:aws:iam::{ACCOUNT}:role/scanner-prod-deploy"],
        "dev": [f"arn:aws:iam::{ACCOUNT}:role/scanner-dev-deploy"],
    }
    policy = permissions.state_bucket_policy("aws", BUCKET, [(prod, roles["prod"]), (dev, roles["dev"])])

    def denied(role: str, action: str, key: str) -> bool:
        resource = f"arn:aws:s3:::{BUCKET}/{key}" if key else f"arn:aws:s3:::{BUCKET}"
        for s in policy["Statement"]:
            if s["Effect"] != "Deny" or s["Principal"] == "*" or role not in s["Principal"]["AWS"]:
                continue
            if "Action" in s and any(fnmatch.fnmatchcase(action, a) for a in _list(s["Action"])):
                if not any(fnmatch.fnmatchcase(resource, r) for r in s["NotResource"]):
                    return True
            if "NotAction" in s and not any(fnmatch.fnmatchcase(action, a) for a in s["NotAction"]):
                if any(fnmatch.fnmatchcase(resource, r) for r in s["Resource"]):
                    return True
        return False

    dev_role, prod_role = roles["dev"][0], roles["prod"][0]
    assert not denied(dev_role, "s3:PutObject", ".pulumi/stacks/scanner/dev.json")
    assert not denied(dev_role, "s3:GetObject", ".pulumi/history/scanner/dev/dev-1.history.json")
    assert denied(dev_role, "s3:GetObject", ".pulumi/stacks/scanner/prod.json")
    assert denied(dev_role, "s3:PutObject", ".pulumi/locks/organization/scanner/prod/x.json")
    assert not denied(prod_role, "s3:PutObject", ".pulumi/locks/organization/scanner/prod/x.json")
    assert not denied(prod_role, "s3:DeleteObject", ".pulumi/locks/organization/scanner/prod/x.json")
    assert denied(prod_role, "s3:DeleteObjectVersion", ".pulumi/stacks/scanner/prod.json")
    for action in ("s3:DeleteBucket", "s3:PutBucketPolicy", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration"):
        assert denied(prod_role, action, ""), action
    assert not denied(prod_role, "s3:ListBucket", "")
    tls = policy["Statement"][0]
    assert tls["Principal"] == "*" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_github_trust_is_one_repository_and_one_subject():
    trust = permissions.github_trust(
        f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
        "acme/infra",
        ["environment:production"],
    )
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": ["repo:acme/infra:environment:production"],
    }
    # No wildcard subject: StringLike on `repo:acme/*` would trust every branch and fork.
    assert "StringLike" not in statement["Condition"]


# ----- documents IAM takes -----------------------------------------------------------------------


def test_the_documents_fit_their_quotas():
    deploy = permissions.deploy_policy(pipeline(hosted_zone_id="Z0123456789ABCDEFGHIJ"), permissions.PROGRAM_SERVICES)
    preview = permissions.preview_policy(pipeline(), permissions.PROGRAM_INVOKES)
    assert permissions.size(deploy) < permissions.INLINE_LIMIT
    assert permissions.size(preview) < permissions.INLINE_LIMIT
    assert all(sid.isalnum() for sid in statements(deploy)), "Sids are alphanumeric"


def test_the_readme_explains_every_statement_of_the_deploy_role():
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    deploy = permissions.deploy_policy(pipeline(hosted_zone_id="Z0123456789ABCDEFGHIJ"), permissions.PROGRAM_SERVICES)
    for sid in statements(deploy):
        assert sid in permissions.WHY, f"{sid} has no reason in permissions.WHY"
        assert f"`{sid}`" in readme, f"the README's deploy role table lacks {sid}"


@mock_aws
def test_iam_takes_the_roles_and_policies():
    iam = boto3.client("iam", region_name="us-east-1")
    provider = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
    )["OpenIDConnectProviderArn"]
    documents = {
        "deploy": permissions.deploy_policy(
            pipeline(hosted_zone_id="Z0123456789ABCDEFGHIJ"), permissions.PROGRAM_SERVICES
        ),
        "preview": permissions.preview_policy(pipeline(), permissions.PROGRAM_INVOKES),
        "runner": permissions.runner_policy(
            "aws",
            "us-east-1",
            ACCOUNT,
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/codebuild/scanner-prod-deploy",
            [f"arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/subnet-0123456789abcdef0"],
            f"arn:aws:codeconnections:us-east-1:{ACCOUNT}:connection/00000000-0000-4000-8000-000000000000",
        ),
    }
    for name, document in documents.items():
        trust = permissions.github_trust(provider, "acme/infra", ["pull_request"])
        if name == "runner":
            trust = permissions.codebuild_trust(ACCOUNT, f"arn:aws:codebuild:us-east-1:{ACCOUNT}:project/x")
        iam.create_role(RoleName=f"scanner-prod-{name}", AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=f"scanner-prod-{name}", PolicyName=name, PolicyDocument=json.dumps(document))
        got = iam.get_role_policy(RoleName=f"scanner-prod-{name}", PolicyName=name)["PolicyDocument"]
        assert got == document
    # The validator can fail: a statement with an unknown key is refused.
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_role_policy(
            RoleName="scanner-prod-deploy",
            PolicyName="broken",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Acton": "s3:*"}]}),
        )


def test_the_printed_policy_is_the_one_written(capsys):
    assert permissions.main(["--stack", "prod", "--account", ACCOUNT]) == 0
    printed = json.loads(capsys.readouterr().out)
    regions = statements(printed)["StackServicesInItsRegions"]["Condition"]["StringEquals"]["aws:RequestedRegion"]
    assert regions == ["us-east-1", "us-west-2"]
    assert "TheStacksState" not in statements(printed)  # no bucket named: Pulumi Cloud


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--stack", "staging"], "error: --stack: no main stack file Pulumi.staging.yaml beside bootstrap/"),
        (["--account", "12"], "error: --account: '12' is not a 12-digit account id"),
        (
            ["--role", "admin"],
            "error: arguments: argument --role: invalid choice: 'admin' (choose from 'deploy', 'preview')",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, line, capsys):
    assert permissions.main(argv) == 2
    assert capsys.readouterr().err.strip() == line
