"""The GitOps examples parse, run the right commands, and keep exit code 2 meaningful.

The run: scripts are executed here with bash -e (GitHub's default shell) and sh -c (the
pods' command) against a stand-in `provision` that exits with a chosen code, so what CI
does with 0, 1 and 2 is tested, not just read.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.manifest.loader import load_manifest

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "examples" / "ci"
K8S = REPO / "examples" / "k8s"
SHARD_FLAG = re.compile(r"--shard \$\{\{ matrix\.shard \}\}/(\d+)")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((CI / "github-actions.yml").read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _step(job: dict[str, Any], command: str) -> str:
    (script,) = [r for r in _runs(job) if f"provision {command}" in r]
    return script


def test_the_workflow_plans_on_pull_requests_applies_on_merge_and_checks_drift_nightly(
    workflow: dict[str, Any],
) -> None:
    on = workflow["on"]
    assert "pull_request" in on and on["push"]["branches"] == ["main"] and on["schedule"]
    jobs = workflow["jobs"]
    assert "pull_request" in jobs["plan"]["if"] and "pull_request" in jobs["comment"]["if"]
    assert "push" in jobs["apply"]["if"]
    assert "schedule" in jobs["drift"]["if"]
    plan = _step(jobs["plan"], "plan")
    assert "--format markdown" in plan and "--detailed-exitcode" in plan
    comment = " ".join(_runs(jobs["comment"]))
    assert "gh pr comment" in comment and "--body-file" in comment
    assert jobs["comment"]["needs"] == "plan"
    apply = _step(jobs["apply"], "apply")
    assert "--auto-approve" in apply and "--confirm-mainnet" in apply
    drift = _step(jobs["drift"], "plan")
    assert "--detailed-exitcode" in drift and "GITHUB_STEP_SUMMARY" in drift


def test_every_job_runs_a_matrix_of_shards_that_covers_every_index(
    workflow: dict[str, Any],
) -> None:
    for name in ("plan", "apply", "drift"):
        job = workflow["jobs"][name]
        shards = job["strategy"]["matrix"]["shard"]
        assert job["strategy"]["fail-fast"] is False
        flags = [int(n) for run in _runs(job) for n in SHARD_FLAG.findall(run)]
        assert flags == [len(shards)], f"{name}: --shard I/N must use N = the matrix size"
        assert shards == list(range(len(shards)))
    assert "matrix.shard" in workflow["jobs"]["apply"]["concurrency"]["group"]


def test_no_wrapper_can_swallow_exit_code_2(workflow: dict[str, Any]) -> None:
    for job in workflow["jobs"].values():
        assert "continue-on-error" not in job
        for step in job["steps"]:
            assert "continue-on-error" not in step
            assert step.get("uses", "").split("@")[0] in {
                "actions/checkout",
                "actions/setup-python",
                "actions/upload-artifact",
                "actions/download-artifact",
                "",
            }, f"no action may run provision for us: {step['uses']}"
            assert "|| true" not in step.get("run", "")


def test_vault_logs_in_with_the_jobs_oidc_token(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"]["id-token"] == "write"
    for name in ("plan", "apply", "drift"):
        login = next(r for r in _runs(workflow["jobs"][name]) if "ACTIONS_ID_TOKEN" in r)
        assert "audience=vault" in login and "::add-mask::" in login
        assert "VAULT_JWT=" in login and "GITHUB_ENV" in login
        assert workflow["jobs"][name]["env"]["VAULT_ROLE"]
    env = {"VAULT_ADDR": "https://vault:8200", "VAULT_ROLE": "ci", "ETH_RPC_URL": "https://rpc"}
    manifest = load_manifest(CI / "provision.yaml", env)
    auth = manifest.vault.auth
    assert auth.method == "jwt" and auth.role == "ci"
    assert auth.jwt is not None and (auth.jwt.kind, auth.jwt.target) == ("env", "VAULT_JWT")


def _run_step(
    script: str, code: int, tmp_path: Path, shell: list[str], **extra_env: str
) -> tuple[int, str, str]:
    """Run a workflow step with a stand-in provision that prints its arguments and exits ``code``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "provision"
    fake.write_text(f'#!/bin/sh\necho "provision $*"\nexit {code}\n')
    fake.chmod(0o755)
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("")
    summary.write_text("")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MANIFEST": "provision.yaml",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        **extra_env,
    }
    script = script.replace("${{ matrix.shard }}", "2")
    proc = subprocess.run(
        [*shell, script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    return proc.returncode, output.read_text(), proc.stdout + proc.stderr


@pytest.mark.parametrize(("code", "fails"), [(0, False), (2, False), (1, True)])
def test_the_plan_step_keeps_changes_pending_apart_from_errors(
    workflow: dict[str, Any], tmp_path: Path, code: int, fails: bool
) -> None:
    rc, output, _ = _run_step(
        _step(workflow["jobs"]["plan"], "plan"), code, tmp_path, ["bash", "-e", "-c"]
    )
    assert (rc != 0) is fails
    assert f"exitcode={code}" in output
    assert "--shard 2/4" in (tmp_path / "plan-2.md").read_text()


@pytest.mark.parametrize("code", [0, 1, 2])
def test_the_drift_step_exits_with_the_plans_own_code(
    workflow: dict[str, Any], tmp_path: Path, code: int
) -> None:
    rc, _, out = _run_step(
        _step(workflow["jobs"]["drift"], "plan"), code, tmp_path, ["bash", "-e", "-c"]
    )
    assert rc == code
    assert ("::error::" in out) is (code == 2)
    assert "--detailed-exitcode" in (tmp_path / "summary").read_text()


# -- Kubernetes -------------------------------------------------------------------------------


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def test_the_kustomization_lists_files_that_exist() -> None:
    (kustomization,) = _docs("kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file()


def test_the_apply_job_is_indexed_and_each_pod_applies_its_shard(tmp_path: Path) -> None:
    (job,) = _docs("apply-job.yaml")
    assert job["kind"] == "Job"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    shards = next(e["value"] for e in container["env"] if e["name"] == "SHARDS")
    assert spec["completions"] == spec["parallelism"] == int(shards)
    assert pod["restartPolicy"] == "Never"
    assert container["command"] == ["sh", "-c"]
    (script,) = container["args"]
    assert "JOB_COMPLETION_INDEX" in script and "--auto-approve" in script
    # the pod's shell expands the index Kubernetes sets: pod 3 of 4 applies shard 3/4
    _, _, out = _run_step(
        script, 0, tmp_path, ["sh", "-c"], JOB_COMPLETION_INDEX="3", SHARDS=shards
    )
    assert "provision apply -f /etc/provision/provision.yaml --shard 3/4 --auto-approve" in out
    _check_pod_wiring(pod, container)


def test_the_drift_cronjob_fails_at_once_on_exit_code_2(tmp_path: Path) -> None:
    (cron,) = _docs("drift-cronjob.yaml")
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    script = container["args"][0]
    assert "provision plan" in script and "--detailed-exitcode" in script
    assert rule["onExitCodes"]["containerName"] == container["name"]
    for code in (0, 1, 2):  # `exec`: the pod's exit code is provision's own
        rc, _, out = _run_step(
            script, code, tmp_path, ["sh", "-c"], JOB_COMPLETION_INDEX="0", SHARDS="4"
        )
        assert rc == code
    # the nightly run is where keys are rotated: what is due, on this shard, before the check
    _, _, out = _run_step(script, 0, tmp_path, ["sh", "-c"], JOB_COMPLETION_INDEX="1", SHARDS="4")
    rotate, plan = out.splitlines()
    assert rotate == (
        "provision rotate --due -f /etc/provision/provision.yaml --shard 1/4 --auto-approve"
        " --confirm-mainnet"  # the configmap's manifest is on mainnet
    )
    assert plan.startswith("provision plan") and "--shard 1/4" in plan
    _, _, failed = _run_step(
        script, 1, tmp_path, ["sh", "-c"], JOB_COMPLETION_INDEX="1", SHARDS="4"
    )
    assert "provision plan" not in failed  # a failed rotation is retried, not hidden by the check
    _check_pod_wiring(pod, container)


def _check_pod_wiring(pod: dict[str, Any], container: dict[str, Any]) -> None:
    (account,) = _docs("serviceaccount.yaml")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    (configmap,) = _docs("configmap.yaml")
    (volume,) = pod["volumes"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    (mount,) = container["volumeMounts"]
    script = " ".join(container["args"])
    manifest_file = next(iter(configmap["data"]))
    assert f"-f {mount['mountPath']}/{manifest_file}" in script


def test_the_configmap_holds_a_valid_manifest_with_kubernetes_auth(tmp_path: Path) -> None:
    (configmap,) = _docs("configmap.yaml")
    path = tmp_path / "provision.yaml"
    path.write_text(configmap["data"]["provision.yaml"])
    manifest = load_manifest(
        path, {"VAULT_ADDR": "https://vault:8200", "ETH_RPC_URL": "https://rpc"}
    )
    assert manifest.vault.auth.method == "kubernetes" and manifest.vault.auth.role
    assert len(manifest.accounts) >= 2
    for account in manifest.accounts:  # the nightly CronJob rotates the named keys
        policies = {k.name: (k.rotate_after, k.rotation_overlap) for k in account.api_keys}
        assert policies == {"default": (None, 3600), "quoter": (90 * 86400, 7200)}


def test_pull_request_plans_take_the_manifest_as_untrusted(workflow: dict[str, Any]) -> None:
    """Issue 16: the PR's manifest is unreviewed; the endpoints are pinned in the workflow."""
    plan = _step(workflow["jobs"]["plan"], "plan")
    assert "--untrusted-manifest" in plan
    assert re.findall(r"--allow-env (\w+)", plan) == ["VAULT_ROLE", "VAULT_JWT"]
    pinned = workflow["env"]
    for name in ("VAULT_ADDR", "DYDX_API_URL", "ETH_RPC_URL", "PROVISION_CHAIN_ID"):
        assert pinned[name], name
    assert pinned["VAULT_ADDR"].startswith("https://") and pinned["DYDX_API_URL"].startswith(
        "https://"
    )
    for name in ("apply", "drift"):
        assert "--untrusted-manifest" not in " ".join(_runs(workflow["jobs"][name]))
    roles = {
        name: workflow["jobs"][name]["env"]["VAULT_ROLE"] for name in ("plan", "apply", "drift")
    }
    assert len(set(roles.values())) == 3, roles
