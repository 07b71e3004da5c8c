"""Policy unit layer for monitoring coverage: one policy, in process, on the recorded prod stack
with one hand-made edit; the whole-program faults stay in test_monitoring_policies.py."""

import pytest
from conftest import assert_refused, drop, named, run, unit_cases, verdict

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
STRANGER = "arn:aws:sns:us-east-1:210987654321:someone-else"
MODES = ["preview", "update"]


def edit(type_, name, **inputs):
    """Inputs (and outputs) of the named resources replaced, and a replaced property's recorded
    dependencies with them, as a changed argument shows."""

    def apply(record):
        for resource in named(record, type_, name):
            for key, value in inputs.items():
                resource["inputs"][key] = value
                resource["outputs"][key] = value
                resource.get("propertyDependencies", {}).pop(key, None)

    return apply


def tagged(type_, name, key, value):
    """A tag changed: its key holds dots, so not through a dotted path."""

    def apply(record):
        for resource in named(record, type_, name):
            for side in ("inputs", "outputs"):
                resource[side]["tags"] = dict(resource[side]["tags"], **{key: value})

    return apply


CASES = {
    "monitoring-resources-alarmed": [
        (
            "file-system-alarm-dropped",
            lambda r: drop(r, ALARM, "alarms-repo-cache-io-limit"),
            "FileSystem 'repo-cache-fs': no alarm with an action watches it",
        ),
        (
            "broker-alarm-acts-on-nothing",
            edit(ALARM, "alarms-broker-cpu", alarmActions=[]),
            "Broker 'rabbitmq-broker': no alarm with an action watches it",
        ),
        (
            "replica-alarms-actions-off",
            edit(ALARM, "alarms-database-replica-*", actionsEnabled=False),
            "Instance 'postgres-replica': no alarm with an action watches it",
        ),
        (
            "load-balancer-alarms-dropped",
            lambda r: [drop(r, ALARM, f"alarms-api-{m}-*") for m in ("5xx", "response-time", "unhealthy-targets")],
            "Ingress 'services-api': no alarm with an action watches it",
        ),
        (
            "nat-alarms-dropped",
            lambda r: [drop(r, ALARM, f"alarms-nat-{m}-us-east-1b") for m in ("port-allocation", "dropped-packets")],
            "NatGateway 'network-nat-us-east-1b': no alarm",
        ),
    ],
    "monitoring-zone-composites": [
        (
            "composite-dropped",
            lambda r: drop(r, COMPOSITE, "alarms-zone-us-east-1c"),
            "zone us-east-1c has no zone-impaired composite alarm",
        ),
        (
            "composite-tagged-as-a-tier-s",
            tagged(COMPOSITE, "alarms-zone-us-east-1a", "scanner.io/composite", "tier"),
            "zone us-east-1a has no zone-impaired composite alarm",
        ),
        (
            "composite-of-another-zone-s-alarms",
            edit(COMPOSITE, "alarms-zone-us-east-1b", alarmRule='ALARM("scanner-prod-nat-port-allocation-us-east-1a")'),
            "zone us-east-1b's composite alarm names none of the zone's alarms",
        ),
        (
            "composite-tagged-with-another-zone",
            tagged(COMPOSITE, "alarms-zone-us-east-1b", "scanner.io/zone", "us-east-1a"),
            "zone us-east-1b has no zone-impaired composite alarm",
        ),
    ],
    "alarms-act-on-stack-topics": [
        (
            "composite-without-action",
            edit(COMPOSITE, "alarms-tier-data", alarmActions=[]),
            "CompositeAlarm 'alarms-tier-data' has no alarm action",
        ),
        (
            "actions-disabled-in-code",
            edit(ALARM, "alarms-broker-memory", actionsEnabled=False),
            "has its actions disabled in the program",
        ),
        (
            "stranger-s-topic-on-recovery",
            edit(ALARM, "alarms-queue-sast-wait", okActions=[STRANGER]),
            f"acts on {STRANGER} (okActions), which is no SNS topic of this stack",
        ),
        (
            "the-global-copy-from-the-home-region",
            edit(
                ALARM,
                "alarms-database-primary-cpu",
                alarmActions=["arn:aws:sns:eu-west-1:123456789012:scanner-prod-page"],
            ),
            "a topic in eu-west-1: CloudWatch alarms act only on topics of their own region (us-east-1)",
        ),
        (
            "stranger-s-topic-on-a-composite",
            edit(COMPOSITE, "alarms-zone-us-east-1a", alarmActions=[STRANGER]),
            "which is no SNS topic of this stack",
        ),
    ],
}


@pytest.mark.parametrize("policy, change, message, mode", unit_cases(CASES))
def test_fault_is_refused(policy, change, message, mode):
    record = run("prod", mode)
    change(record)
    assert_refused(record, policy, message)


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("policy", sorted(CASES))
def test_clean_stack_passes(policy, mode, stack):
    assert verdict(run(stack, mode), policy) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_topic_of_the_stack_named_by_its_arn_passes(mode):
    """A literal ARN of the stack's own ticket topic (how a hand-written alarm would name it)."""
    record = run("prod", mode)
    edit(ALARM, "alarms-queue-sast-wait", okActions=["arn:aws:sns:us-east-1:123456789012:scanner-prod-ticket"])(record)
    assert verdict(record, "alarms-act-on-stack-topics") == []
