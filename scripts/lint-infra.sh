#!/usr/bin/env bash
# Lint the SAM template three ways, offline, with pinned tools:
#
#   scripts/lint-infra.sh            # what `make test` runs
#
#   1. cfn-lint on infra/template.yaml (the SAM source).
#   2. aws-sam-translator turns it into plain CloudFormation, and cfn-lint runs
#      on that too: cfn-lint does not check values inside AWS::Serverless::*
#      resources (a wrong runtime or event type passes), the translated
#      template has no such blind spot.
#   3. checkov on both, with every skipped check listed (and justified) in
#      infra/.checkov.yaml.
#
# The tools live in venvs under .venv/ (gitignored), installed on first use and
# reused while their pins match. checkov gets its own venv because it pins an old
# boto3. Quiet on success (one summary line per tool); on a finding it prints the
# tool's report and exits non-zero. Needs no AWS credentials and no network after
# the first run.
set -euo pipefail

CFN_LINT_VERSION="1.58.0"
SAM_TRANSLATOR_VERSION="1.115.0"
CHECKOV_VERSION="3.3.30"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="infra/template.yaml"
checkov_config="infra/.checkov.yaml"
infra_venv="${repo_root}/.venv/infra"
checkov_venv="${repo_root}/.venv/checkov"
# Kept under the ignored .venv/ so a finding's file path can be opened afterwards.
translated="${infra_venv}/translated-template.json"

cd "${repo_root}"

say() { echo "lint-infra: $*" >&2; }

# No prompts, progress bars or colours: CI=true and no TTY must behave like a terminal run.
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
export NO_COLOR=1 ANSI_COLORS_DISABLED=1 PYTHONWARNINGS=ignore
# A developer's AWS profile must not matter: the translator only needs a region.
unset AWS_PROFILE AWS_SESSION_TOKEN

python="$(command -v python3 || command -v python || true)"
if [[ -z "${python}" ]]; then
    say "python3 is required"
    exit 1
fi

# ensure_venv DIR PACKAGE==VERSION...: (re)create DIR with exactly these pins.
ensure_venv() {
    local venv="$1"
    shift
    local pins="$*" stamp="${venv}/.lint-infra-pins"
    if [[ -x "${venv}/bin/python" && -f "${stamp}" && "$(cat "${stamp}")" == "${pins}" ]]; then
        return 0
    fi
    say "installing ${pins} into ${venv#"${repo_root}/"} (first run only)"
    rm -rf "${venv}"
    mkdir -p "$(dirname "${venv}")"
    "${python}" -m venv "${venv}"
    local log="${venv}/pip-install.log"
    if ! "${venv}/bin/python" -m pip install --quiet --progress-bar off "$@" >"${log}" 2>&1; then
        cat "${log}" >&2
        say "pip install failed"
        exit 1
    fi
    echo "${pins}" >"${stamp}"
}

ensure_venv "${infra_venv}" "cfn-lint==${CFN_LINT_VERSION}" "aws-sam-translator==${SAM_TRANSLATOR_VERSION}"
ensure_venv "${checkov_venv}" "checkov==${CHECKOV_VERSION}"

failed=0
output=""

# run_quiet LABEL CMD...: run, keep the output, print it only if the command fails.
run_quiet() {
    local label="$1"
    shift
    if output="$("$@" 2>&1)"; then
        return 0
    fi
    echo "${output}" >&2
    say "${label}: FAILED"
    failed=1
    return 1
}

# 1. cfn-lint on the SAM source.
if run_quiet "cfn-lint (SAM)" "${infra_venv}/bin/cfn-lint" "${template}"; then
    echo "cfn-lint ${CFN_LINT_VERSION}: ${template} clean"
fi

# 2. Translate to plain CloudFormation, then cfn-lint it. No credentials needed: the
#    translator only wants a region (and a partition, derived from it) to fill pseudo
#    parameters, uses a dummy account id, and needs IAM only for managed policy names.
rm -f "${translated}"
if run_quiet "sam-translate" env AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
    "${infra_venv}/bin/python" - "${template}" "${translated}" <<'PY'; then
import json
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template attaches no AWS managed policies by name, so nothing to look up
    in IAM (which would need credentials)."""

    def load(self):
        return {}


def placeholder_code_uris(sam):
    """CodeUri points at the workspace on disk; `sam build` uploads it and puts an S3
    URI in its place. The translator accepts only the latter, so stand one in."""
    function_globals = sam.get("Globals", {}).get("Function", {})
    local_default = isinstance(function_globals.get("CodeUri"), str)
    function_globals.pop("CodeUri", None)
    for name, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.setdefault("Properties", {})
        code_uri = props.get("CodeUri")
        if (code_uri is None and local_default) or (
            isinstance(code_uri, str) and not code_uri.startswith("s3://")
        ):
            props["CodeUri"] = f"s3://lint-placeholder/{name}.zip"


source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as f:
    sam = yaml_parse(f.read())
placeholder_code_uris(sam)
try:
    cfn = transform(sam, {}, NoManagedPolicies())
except InvalidDocumentException as e:
    for cause in e.causes:
        print(f"{source}: {cause.message}", file=sys.stderr)
    sys.exit(1)
with open(target, "w", encoding="utf-8") as f:
    json.dump(cfn, f, indent=1, sort_keys=True)
PY
    if run_quiet "cfn-lint (translated)" "${infra_venv}/bin/cfn-lint" "${translated}"; then
        echo "sam-translator ${SAM_TRANSLATOR_VERSION} + cfn-lint: translated template clean"
    fi
    # The project's own IAM rule, which neither linter enforces: explicit actions only
    # (no `*` in any allowed action, no NotAction) and no AWS "*FullAccess" policies.
    # Key policies are resource policies, not roles, and are not checked here.
    if run_quiet "iam-guard" "${infra_venv}/bin/python" - "${translated}" <<'PY'; then
import json
import sys

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    resources = json.load(f).get("Resources", {})


def as_list(value):
    return value if isinstance(value, list) else [value]


def documents(resource):
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::IAM::Role":
        for policy in props.get("Policies", []):
            yield policy.get("PolicyDocument", {})
    elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield props.get("PolicyDocument", {})


problems = []
for name, resource in sorted(resources.items()):
    props = resource.get("Properties", {})
    for arn in as_list(props.get("ManagedPolicyArns", [])):
        if "FullAccess" in json.dumps(arn):
            problems.append(f"{name}: managed policy {json.dumps(arn)} grants full access")
    for document in documents(resource):
        for statement in as_list(document.get("Statement", [])):
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement:
                problems.append(f"{name}: NotAction in an Allow statement")
            for action in as_list(statement.get("Action", [])):
                if not isinstance(action, str) or "*" in action:
                    problems.append(f"{name}: action {json.dumps(action)} is not explicit")
for problem in problems:
    print(f"{path}: {problem}")
sys.exit(1 if problems else 0)
PY
        echo "iam-guard: every allowed IAM action is explicit"
    fi
else
    translated=""
fi

# 3. checkov on the SAM source and (when it translated) the plain CloudFormation.
checkov_files=(-f "${template}")
if [[ -n "${translated}" ]]; then
    checkov_files+=(-f "${translated}")
fi
if run_quiet "checkov" env LOG_LEVEL=WARNING "${checkov_venv}/bin/checkov" \
    --config-file "${checkov_config}" "${checkov_files[@]}" \
    --framework cloudformation --skip-download --compact --quiet; then
    # With --quiet checkov prints nothing when every check passes; count the skips ourselves.
    skipped="$(grep -cE '^[[:space:]]*- CKV' "${checkov_config}" || true)"
    echo "checkov ${CHECKOV_VERSION}: no failed checks (${skipped} skipped by ${checkov_config})"
fi

exit "${failed}"
