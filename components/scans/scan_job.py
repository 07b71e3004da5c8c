"""The Kubernetes Job every scan engine runs as: a pure function, so the queue-driven scaler
instantiates it per engine and the tests read it without a Pulumi runtime.

How a scan job gets its source:

1. `claim` (the engine image, `claim --job <job name>`): takes the Job's scan request and
   writes it to an in-memory volume as `KEY=value` lines (`REPO_URL`, `REPO_REF`, `REPO_KEY`, and
   a GitHub token it picked from the token pool with the job's own IAM role). The contract: a
   request is bound to the Job, so a pod re-created for the same Job (after a spot interruption)
   claims the same request, not another one; the engine settles the queue delivery only once
   the binding is stored.
2. `fetch` (a git image): under a per-repository lock on the shared EFS cache, creates the
   repository's bare mirror on first use, then fetches only the requested ref, shallow and
   single-branch, and checks it out into the work volume. Other repositories are fetched in
   parallel by other jobs; the same repository waits for the lock instead of racing.
3. `scan` (the engine image): scans the checkout and sends results to the storage API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.eks import karpenter_plan

#: Longest scan the service promises, and the margin for claiming, waiting for the repository's
#: lock (at most LOCK_WAIT_SECONDS), fetching and reporting.
MAX_SCAN_MINUTES = 30
LOCK_WAIT_SECONDS = 300
DEADLINE_MARGIN_MINUTES = 10
CACHE_MOUNT = "/cache"
WORK_MOUNT = "/work"
#: The claimed request, with its GitHub token: in memory, never on the node's disk.
REQUEST_MOUNT = "/run/scan"
#: POSIX identity of every scan container; the EFS access point enforces the same owner.
SCAN_UID = 10001
SCAN_GID = 10001
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
#: Label every scan pod carries, whatever its engine.
SCAN_APP = "scan-engine"

#: The `fetch` step. POSIX shell, so it runs in any small image with git and flock (busybox has
#: it). Paths come from the environment so the tests can run it against a local repository.
FETCH_SCRIPT = """\
set -eu
cache="${CACHE_DIR:-/cache}"
work="${WORK_DIR:-/work}"
request="${REQUEST_FILE:-/run/scan/request.env}"
# The request is data, not code: read only the three keys and the token, never source the file.
value() { sed -n "s/^$1=//p" "$request" | head -n 1; }
REPO_URL="$(value REPO_URL)"; REPO_REF="$(value REPO_REF)"; REPO_KEY="$(value REPO_KEY)"
GITHUB_TOKEN="$(value GITHUB_TOKEN)"
case "$REPO_KEY" in ''|*[!A-Za-z0-9._-]*|.*) echo "fetch: bad REPO_KEY" >&2; exit 2;; esac
if [ -n "$GITHUB_TOKEN" ]; then
  # GitHub's git endpoint takes Basic auth; passed by environment, never on a command line.
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader
  export GIT_CONFIG_VALUE_0="Authorization: Basic $(printf 'x-access-token:%s' "$GITHUB_TOKEN" | base64 | tr -d '\\n')"
fi
mirror="$cache/repos/$REPO_KEY.git"
mkdir -p "$cache/repos" "$cache/locks"
# One writer per repository at a time (NFSv4.1 locks hold across nodes); other repositories
# are fetched in parallel by other jobs.
exec 9>"$cache/locks/$REPO_KEY.lock"
flock -w "${LOCK_WAIT_SECONDS:-300}" 9
fresh_mirror() {
  # Built aside and moved into place, so a job killed half-way never leaves a broken mirror.
  rm -rf "$mirror.new.$$"
  git init --quiet --bare "$mirror.new.$$"
  rm -rf "$mirror"
  mv "$mirror.new.$$" "$mirror"
}
[ -d "$mirror/objects" ] || fresh_mirror
# Under the lock nobody else is writing: lock files left by a killed job are stale.
rm -f "$mirror/shallow.lock" "$mirror/index.lock" "$mirror"/refs/scan/*.lock
# Only the requested ref, shallow, no tags; from the URL itself, so no remote config can rot.
fetch() { git -C "$mirror" fetch --quiet --depth=1 --no-tags "$REPO_URL" "+$REPO_REF:refs/scan/head"; }
fetch || { fresh_mirror; fetch; }
commit="$(git -C "$mirror" rev-parse refs/scan/head)"
flock -u 9
# A checkout, not `git archive`: the scanned repository's .gitattributes must not hide files.
rm -rf "$work/src" && mkdir -p "$work/src"
GIT_INDEX_FILE="$work/.index" git --git-dir="$mirror" --work-tree="$work/src" checkout --quiet -f "$commit" -- .
rm -f "$work/.index"
echo "$commit" > "$work/commit"
"""


@dataclass(frozen=True)
class ScanJobArgs:
    engine: str
    """Engine name (label value and container name)."""
    image: pulumi.Input[str]
    """Engine image, pinned (immutable tag or digest)."""
    git_image: pulumi.Input[str]
    """Image for the fetch step; needs git, tar and flock."""
    cache_claim: str
    """ReadWriteMany claim of the repository cache in the scan namespace."""
    service_account: str
    """Service account whose IAM role reads the token pool and the queue credentials."""
    cpu: str = "2"
    memory: str = "4Gi"
    ttl_seconds_after_finished: int = 600
    env: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Extra environment for the engine (queue, storage API endpoints, secret ARNs)."""


def active_deadline_seconds() -> int:
    return (MAX_SCAN_MINUTES + DEADLINE_MARGIN_MINUTES) * 60


def pack_scans_together() -> k8s.core.v1.AffinityArgs:
    """Prefer a node that already runs scans (of any engine). The scheduler's default scoring
    spreads pods over the emptiest nodes, which keeps every node of the pool partly busy; since
    running scans may not be disrupted, partly busy nodes are never consolidated. Packing
    leaves whole nodes empty as the load falls, and those go at once."""
    return k8s.core.v1.AffinityArgs(
        pod_affinity=k8s.core.v1.PodAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                k8s.core.v1.WeightedPodAffinityTermArgs(
                    weight=100,
                    pod_affinity_term=k8s.core.v1.PodAffinityTermArgs(
                        topology_key="kubernetes.io/hostname",
                        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": SCAN_APP}),
                    ),
                )
            ],
        )
    )


def scan_job_spec(args: ScanJobArgs) -> k8s.batch.v1.JobSpecArgs:
    labels = {"app.kubernetes.io/name": SCAN_APP, "scanner.io/engine": args.engine}
    env = [k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in sorted({**args.env, "HOME": "/tmp"}.items())]
    env.append(
        k8s.core.v1.EnvVarArgs(
            name="JOB_NAME",
            value_from=k8s.core.v1.EnvVarSourceArgs(
                field_ref=k8s.core.v1.ObjectFieldSelectorArgs(
                    field_path="metadata.labels['batch.kubernetes.io/job-name']"
                )
            ),
        )
    )
    resources = k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": args.cpu, "memory": args.memory, "ephemeral-storage": "10Gi"},
        limits={"memory": args.memory, "ephemeral-storage": "20Gi"},  # no CPU limit: spare CPU is free speed
    )
    container_security = k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )
    work = k8s.core.v1.VolumeMountArgs(name="work", mount_path=WORK_MOUNT)
    tmp = k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")  # root file systems are read-only
    request = k8s.core.v1.VolumeMountArgs(name="request", mount_path=REQUEST_MOUNT)
    cache = k8s.core.v1.VolumeMountArgs(name="repo-cache", mount_path=CACHE_MOUNT)
    small = k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": "250m", "memory": "256Mi"}, limits={"memory": "512Mi"}
    )
    return k8s.batch.v1.JobSpecArgs(
        # One retry for a failed claim or fetch; a failing scan fails the Job at once; a node
        # taken away (spot interruption) re-creates the pod without counting against it.
        backoff_limit=1,
        pod_failure_policy=k8s.batch.v1.PodFailurePolicyArgs(
            rules=[
                k8s.batch.v1.PodFailurePolicyRuleArgs(
                    action="Ignore",
                    on_pod_conditions=[
                        k8s.batch.v1.PodFailurePolicyOnPodConditionsPatternArgs(type="DisruptionTarget")
                    ],
                ),
                k8s.batch.v1.PodFailurePolicyRuleArgs(
                    action="FailJob",
                    on_exit_codes=k8s.batch.v1.PodFailurePolicyOnExitCodesRequirementArgs(
                        container_name="scan", operator="NotIn", values=[0]
                    ),
                ),
            ]
        ),
        active_deadline_seconds=active_deadline_seconds(),
        ttl_seconds_after_finished=args.ttl_seconds_after_finished,
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(
                labels=labels,
                # Consolidation must never stop a running scan to save a node.
                annotations={DO_NOT_DISRUPT: "true"},
            ),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=args.service_account,
                restart_policy="Never",
                node_selector={karpenter_plan.POOL_LABEL: karpenter_plan.SCAN_POOL},
                affinity=pack_scans_together(),
                tolerations=[
                    k8s.core.v1.TolerationArgs(
                        key=karpenter_plan.SCAN_TAINT["key"],
                        operator="Equal",
                        value=karpenter_plan.SCAN_TAINT["value"],
                        effect=karpenter_plan.SCAN_TAINT["effect"],
                    )
                ],
                termination_grace_period_seconds=60,
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True,
                    run_as_user=SCAN_UID,
                    run_as_group=SCAN_GID,
                    fs_group=SCAN_GID,
                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                ),
                init_containers=[
                    k8s.core.v1.ContainerArgs(
                        name="claim",
                        image=args.image,
                        args=["claim", "--job", "$(JOB_NAME)", "--output", f"{REQUEST_MOUNT}/request.env"],
                        env=env,
                        volume_mounts=[request, tmp],
                        resources=small,
                        security_context=container_security,
                    ),
                    k8s.core.v1.ContainerArgs(
                        name="fetch",
                        image=args.git_image,
                        command=["/bin/sh", "-c", FETCH_SCRIPT],
                        env=[
                            k8s.core.v1.EnvVarArgs(name="HOME", value="/tmp"),
                            k8s.core.v1.EnvVarArgs(name="LOCK_WAIT_SECONDS", value=str(LOCK_WAIT_SECONDS)),
                        ],
                        volume_mounts=[request, work, cache, tmp],
                        resources=small,
                        security_context=container_security,
                    ),
                ],
                containers=[
                    k8s.core.v1.ContainerArgs(
                        name="scan",
                        image=args.image,
                        args=["scan", "--source", f"{WORK_MOUNT}/src"],
                        # Neither the shared cache (other repositories) nor the claimed token: the scan
                        # reads only its own checkout.
                        env=env,
                        volume_mounts=[work, tmp],
                        resources=resources,
                        security_context=container_security,
                    )
                ],
                volumes=[
                    k8s.core.v1.VolumeArgs(
                        name="request",
                        empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi"),
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="2Gi")
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="20Gi")
                    ),
                    k8s.core.v1.VolumeArgs(
                        name="repo-cache",
                        persistent_volume_claim=(
                            k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=args.cache_claim)
                        ),
                    ),
                ],
            ),
        ),
    )
