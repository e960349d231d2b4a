#!/usr/bin/env bash
# Renders every kustomize overlay under deploy/k8s/overlays and validates every object
# offline: Kubernetes kinds and the MongoDB community operator's MongoDBCommunity with
# kubeconform, Strimzi and prometheus-operator kinds with their compiled CRD schemas.
# Installs its pinned tools into .cache/k8s on first use; later runs reuse them.
# `--render-json DIR` renders every overlay to DIR/<overlay>.json (a JSON list of the
# objects) without validating, for the contract tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/k8s"
K8S="$ROOT/deploy/k8s"

KUSTOMIZE_VERSION=v5.8.1
KUBECONFORM_VERSION=v0.7.0
KUBERNETES_VERSION=1.33.0            # schemas from PyPI kubernetes-validate
KUBERNETES_VALIDATE_VERSION=1.37.0
MONGODB_OPERATOR_VERSION=v0.13.0     # Go module github.com/mongodb/mongodb-kubernetes-operator

BIN="$CACHE/bin/$KUSTOMIZE_VERSION-$KUBECONFORM_VERSION"
SCHEMAS="$CACHE/schemas/kubernetes-v$KUBERNETES_VERSION"
CRD_SCHEMAS="$CACHE/schemas/mongodb-operator-$MONGODB_OPERATOR_VERSION"
NODE_DIR="$CACHE/node"
# The generator builds the services' Faust apps, so it needs the project's packages.
PYTHON="$ROOT/.venv/bin/python"
[[ -x "$PYTHON" ]] || PYTHON=python3

export GOTOOLCHAIN=local GOFLAGS=-modcacherw
export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/pkg/mod"

install_go_tools() {
  [[ -x "$BIN/kustomize" && -x "$BIN/kubeconform" ]] && return
  echo "k8s-validate: installing kustomize $KUSTOMIZE_VERSION, kubeconform $KUBECONFORM_VERSION"
  mkdir -p "$BIN"
  GOBIN="$BIN" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  GOBIN="$BIN" go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
}

install_kubernetes_schemas() {
  [[ -f "$SCHEMAS/.complete" ]] && return
  echo "k8s-validate: unpacking Kubernetes $KUBERNETES_VERSION schemas"
  local download
  download="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    -d "$download" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  rm -rf "$SCHEMAS" && mkdir -p "$SCHEMAS"
  # The package's schemas name their definitions by absolute URL; kubeconform needs
  # them self-contained on disk, so drop the ids and make the references relative.
  python3 - "$download"/kubernetes_validate-*.whl "$SCHEMAS" "v$KUBERNETES_VERSION" <<'PY'
import json, sys, zipfile
wheel, out, version = sys.argv[1:]
prefix = f"kubernetes_validate/kubernetes-json-schema/{version}-local-strict/"
with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".json")]
    if not names:
        sys.exit(f"no schemas for {version} in {wheel}")
    for name in names:
        schema = json.loads(archive.read(name))
        schema.pop("$id", None)
        text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
        with open(f"{out}/{name[len(prefix):]}", "w", encoding="utf-8") as handle:
            handle.write(text)
PY
  rm -rf "$download"
  touch "$SCHEMAS/.complete"
}

install_node_tools() {
  if [[ -f "$NODE_DIR/.complete" ]] && cmp -s "$K8S/tools/package-lock.json" "$NODE_DIR/package-lock.json"; then
    return
  fi
  echo "k8s-validate: installing the pinned CRD validators (npm)"
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  cp "$K8S/tools/package.json" "$K8S/tools/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --silent --no-audit --no-fund --ignore-scripts --engine-strict=false)
  touch "$NODE_DIR/.complete"
}

install_mongodb_crd_schemas() {
  [[ -f "$CRD_SCHEMAS/.complete" ]] && return
  echo "k8s-validate: converting the MongoDB community operator $MONGODB_OPERATOR_VERSION CRD"
  local module
  module="$(cd "$CACHE" && go mod download -json \
    "github.com/mongodb/mongodb-kubernetes-operator@$MONGODB_OPERATOR_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$CRD_SCHEMAS" && mkdir -p "$CRD_SCHEMAS"
  cp "$K8S/tools/crd2schema.mjs" "$NODE_DIR/"
  node "$NODE_DIR/crd2schema.mjs" "$CRD_SCHEMAS" "$module"/config/crd/bases/*.yaml
  touch "$CRD_SCHEMAS/.complete"
}

mkdir -p "$CACHE"
install_go_tools
install_node_tools

if [[ "${1:-}" == "--render-json" ]]; then
  out="${2:?usage: k8s-validate.sh --render-json DIR}"
  mkdir -p "$out"
  cp "$K8S/tools/to-json.mjs" "$NODE_DIR/"
  for overlay in "$K8S"/overlays/*/; do
    name="$(basename "$overlay")"
    "$BIN/kustomize" build "$overlay" | node "$NODE_DIR/to-json.mjs" >"$out/$name.json"
  done
  exit 0
fi

install_kubernetes_schemas
install_mongodb_crd_schemas
cp "$K8S/tools/validate-crs.mjs" "$NODE_DIR/"

"$PYTHON" "$ROOT/scripts/gen_k8s_topics.py" --check

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
overlays=("$K8S"/overlays/*/)
[[ ${#overlays[@]} -gt 0 ]] || { echo "k8s-validate: no overlays found" >&2; exit 1; }
for overlay in "${overlays[@]}"; do
  name="$(basename "$overlay")"
  if ! "$BIN/kustomize" build "$overlay" >"$work/$name.yaml"; then
    echo "k8s-validate: FAIL $name: kustomize build failed" >&2
    status=1
    continue
  fi
  crs="$(node "$NODE_DIR/validate-crs.mjs" "$work/$name.yaml" "$work/$name.rest.yaml")" || status=1
  [[ -n "$crs" ]] || crs='{"validated": 0}'
  cr_count="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["validated"])' "$crs")"
  if ! "$BIN/kubeconform" -strict -summary -output json \
      -kubernetes-version "$KUBERNETES_VERSION" \
      -schema-location "$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -schema-location "$CRD_SCHEMAS/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
      "$work/$name.rest.yaml" >"$work/$name.kubeconform.json"; then
    status=1
  fi
  python3 - "$name" "$work/$name.kubeconform.json" "$cr_count" <<'PY' || status=1
import json, sys
name, report_path, cr_count = sys.argv[1], sys.argv[2], int(sys.argv[3])
report = json.load(open(report_path, encoding="utf-8"))
bad = [r for r in report.get("resources", []) if r["status"] != "statusValid"]
for r in bad:
    print(f"INVALID {r['kind']} {r['name']}: {r['msg']}", file=sys.stderr)
summary = report["summary"]
total = summary["valid"] + cr_count
state = "FAIL" if bad or summary["invalid"] or summary["errors"] else "ok"
print(f"k8s-validate: {state} {name}: {total} objects validated "
      f"({summary['valid']} by kubeconform, {cr_count} by CRD validators), "
      f"{len(bad)} invalid")
sys.exit(1 if state == "FAIL" else 0)
PY
done
exit "$status"
