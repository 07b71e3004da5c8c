"""The bootstrap stack's config: one line per problem naming the key, exit 2 through the offline
preview with nothing written, and the main stacks' regions read from their own stack files."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from bootstrap import settings
from offline import preview

BOOTSTRAP = ROOT / "bootstrap"
NS = settings.PROJECT


def parse(**keys):
    raw = {"aws:region": "us-east-1", f"{NS}:githubRepository": "acme/scanner-infra"}
    raw[f"{NS}:stacks"] = json.dumps([{"name": "prod", "githubEnvironment": "production"}])
    for key, value in keys.items():
        if value is None:
            raw.pop(f"{NS}:{key}", None)
        else:
            raw[f"{NS}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return settings.parse(raw, "test")


def problems(**keys) -> list[str]:
    with pytest.raises(settings.BootstrapConfigError) as caught:
        parse(**keys)
    return str(caught.value).splitlines()


def test_the_regions_come_from_the_main_stack_files():
    config = parse(
        stacks=[{"name": "prod", "githubEnvironment": "production"}, {"name": "dev", "githubEnvironment": "d"}]
    )
    prod, dev = config.stacks
    assert prod.regions == ("us-east-1", "us-west-2")  # Pulumi.prod.yaml: scanner:backupCopyRegion
    assert dev.region == "eu-west-1"
    assert (config.state_bucket, config.secrets_keys, config.protect_stateful_resources) == (True, True, True)
    assert config.runner_compute_type == "BUILD_GENERAL1_MEDIUM" and config.github_oidc_provider_arn is None


@pytest.mark.parametrize(
    ("keys", "line"),
    [
        ({"githubRepository": None}, f"{NS}:githubRepository: required key is missing"),
        ({"githubRepository": "not a repo"}, f"{NS}:githubRepository: must be owner/name of a GitHub repository"),
        ({"stacks": []}, f"{NS}:stacks: List should have at least 1 item after validation, not 0"),
        (
            {"stacks": [{"name": "staging", "githubEnvironment": "s"}]},
            f"{NS}:stacks[0].name: no main stack file Pulumi.staging.yaml beside bootstrap/",
        ),
        (
            {"stacks": [{"name": "prod", "githubEnvironment": "production", "region": "eu-west-1"}]},
            f"{NS}:stacks[0]: region is read from the stack file; remove it",
        ),
        (
            {"stacks": [{"name": "prod", "githubEnvironment": "a,b"}]},
            f"{NS}:stacks[0].githubEnvironment: must be a GitHub environment name (1-255 characters, none of , ; : * ?)",
        ),
        ({"stacks": [{"name": "prod"}]}, f"{NS}:stacks[0].githubEnvironment: required key is missing"),
        (
            {"stacks": [{"name": "prod", "githubEnvironment": "p", "runer": True}]},
            f"{NS}:stacks[0].runer: unknown key",
        ),
        (
            {"stacks": [{"name": "prod", "githubEnvironment": "p"}, {"name": "prod", "githubEnvironment": "q"}]},
            f"{NS}:stacks: prod named twice",
        ),
        (
            {"stacks": [{"name": "prod", "githubEnvironment": "production", "runner": True}]},
            f"{NS}:githubConnectionArn: required when a stack has runner: true (the runner's webhook needs it)",
        ),
        (
            {"githubConnectionArn": "arn:aws:s3:::nope"},
            f"{NS}:githubConnectionArn: must be a CodeConnections connection ARN",
        ),
        (
            {"operatorRoleArns": ["arn:aws:iam::123456789012:user/alice"]},
            f"{NS}:operatorRoleArns: [0] 'arn:aws:iam::123456789012:user/alice' is not an IAM role ARN",
        ),
        (
            {"githubOidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/example.com"},
            f"{NS}:githubOidcProviderArn: must be the ARN of the token.actions.githubusercontent.com OIDC provider",
        ),
        (
            {"runnerComputeType": "BUILD_GENERAL1_HUGE"},
            f"{NS}:runnerComputeType: Input should be 'BUILD_GENERAL1_SMALL', 'BUILD_GENERAL1_MEDIUM' or 'BUILD_GENERAL1_LARGE'",
        ),
        ({"statebucket": "true"}, f"{NS}:statebucket: unknown key"),
        ({"stacks": "[not json"}, f"{NS}:stacks: not valid JSON"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(keys, line):
    assert problems(**keys) == [line]


def test_every_problem_is_reported_at_once():
    lines = problems(githubRepository="x", githubConnectionArn="arn:nope")
    assert len(lines) == 2 and all(line.startswith(f"{NS}:") for line in lines)


def test_bad_config_stops_the_preview_with_exit_2_and_writes_nothing(tmp_path, capsys):
    record = tmp_path / "out" / "bootstrap.json"
    status = preview.main(
        ["--project", str(BOOTSTRAP), "--stack", "prod", "-c", f"{NS}:githubRepository=nope", "--json", str(record)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err == [f"error: {NS}:githubRepository: must be owner/name of a GitHub repository"]
    assert not record.exists() and not (tmp_path / "out").exists()


def test_a_project_that_is_not_one_is_refused(tmp_path, capsys):
    status = preview.main(["--project", str(tmp_path), "--no-gate"])
    assert status == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: --project: {tmp_path} is not a Pulumi project (no Pulumi.yaml and __main__.py)"
    )
