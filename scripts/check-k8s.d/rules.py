"""What the schemas cannot check of deploy/kubernetes/, called by scripts/check-k8s.

The Indexed Job runs every shard at once and never retries (parallelism ==
completions == BENCH_SHARDS, backoffLimit 0, `--shard auto/...`); every pod
is non-root with a read-only root and no capabilities, with requests and
limits; every ConfigMap, key, claim and volume a pod names exists; embedded
shell scripts parse; the scenario names a `url`; kustomization.yaml lists
files that exist. Prints one line per problem and exits 1 if there is any.

    python rules.py DIR
"""

import os
import subprocess
import sys

import yaml

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def load(directory):
    docs = []
    for root, _, names in os.walk(directory):
        for name in sorted(names):
            if name.endswith((".yaml", ".yml")) and not name.startswith("kustomization."):
                path = os.path.join(root, name)
                with open(path) as f:
                    try:
                        docs += [(path, d) for d in yaml.safe_load_all(f) if d]
                    except yaml.YAMLError as e:
                        problem(path, f"not YAML: {e}".replace("\n", " "))
    return docs


def pod_spec(doc):
    kind = doc.get("kind")
    if kind == "Pod":
        return doc.get("spec", {})
    if kind in ("Job", "Deployment", "StatefulSet", "DaemonSet"):
        return doc.get("spec", {}).get("template", {}).get("spec", {})
    return None


def containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", [])


def check_pod(where, spec, config_maps, claims):
    if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
        problem(where, "pod securityContext.runAsNonRoot must be true")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for v in volumes.values():
        if "configMap" in v and v["configMap"].get("name") not in config_maps:
            problem(where, f"volume {v['name']}: no ConfigMap {v['configMap'].get('name')}")
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim is not None and claim not in claims:
            problem(where, f"volume {v['name']}: no PersistentVolumeClaim {claim}")
    for c in containers(spec):
        at = f"{where} container {c.get('name')}"
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(at, "securityContext.allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(at, "securityContext.readOnlyRootFilesystem must be true")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problem(at, "securityContext.capabilities.drop must hold ALL")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    problem(at, f"resources.{part}.{r} missing")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problem(at, f"volumeMount {m['name']}: no such volume")
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref.get("key") not in config_maps.get(ref.get("name"), {}):
                problem(at, f"env {e['name']}: no key {ref.get('key')} in ConfigMap {ref.get('name')}")
        cmd = c.get("command", [])
        if len(cmd) >= 3 and cmd[0].endswith("sh") and cmd[1] == "-c":
            run = subprocess.run(["sh", "-n", "-c", cmd[2]], capture_output=True, text=True)
            if run.returncode != 0:
                problem(at, f"shell script does not parse: {run.stderr.strip()}")


def check_indexed_job(where, doc):
    spec = doc["spec"]
    n = spec.get("completions")
    if spec.get("parallelism") != n:
        problem(where, f"parallelism {spec.get('parallelism')} != completions {n}: every shard must start at once")
    pod = spec["template"]["spec"]
    if pod.get("restartPolicy") != "Never":
        problem(where, "restartPolicy must be Never (a restarted shard starts late)")
    shard_flag = False
    for c in containers(pod):
        for e in c.get("env", []):
            if e["name"] == "BENCH_SHARDS" and e.get("value") != str(n):
                problem(where, f"container {c['name']}: BENCH_SHARDS {e.get('value')!r} != completions {n}")
        words = " ".join(c.get("command", []) + c.get("args", []))
        shard_flag |= "--shard" in words and "auto/" in words
    if not shard_flag:
        problem(where, "no container runs `bench run --shard auto/N`")


def check_scenario(where, name, text):
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the schema checks still ran
        return
    try:
        scenario = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problem(where, f"{name} is not TOML: {e}")
        return
    if "url" not in scenario.get("target", {}):
        problem(where, f"{name}: [target] url missing (a shard pod never starts a server)")


def check_kustomization(directory):
    path = os.path.join(directory, "kustomization.yaml")
    if not os.path.exists(path):
        return
    with open(path) as f:
        k = yaml.safe_load(f) or {}
    for r in k.get("resources", []):
        if not os.path.exists(os.path.join(directory, r)):
            problem(path, f"resource {r} does not exist")


def main(directory):
    docs = load(directory)
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for _, d in docs if d.get("kind") == "ConfigMap"}
    claims = {d["metadata"]["name"] for _, d in docs if d.get("kind") == "PersistentVolumeClaim"}
    for path, d in docs:
        where = f"{path} {d.get('kind')}/{d.get('metadata', {}).get('name')}"
        spec = pod_spec(d)
        if spec is not None:
            check_pod(where, spec, config_maps, claims)
        if d.get("kind") == "Job":
            if d["spec"].get("backoffLimit") != 0:
                problem(where, "backoffLimit must be 0 (no retries)")
            if d["spec"].get("completionMode") == "Indexed":
                check_indexed_job(where, d)
        if d.get("kind") == "ConfigMap":
            for key, text in d.get("data", {}).items():
                if key.endswith(".toml"):
                    check_scenario(where, key, text)
    if not any(d.get("kind") == "Job" and d["spec"].get("completionMode") == "Indexed" for _, d in docs):
        problem(directory, "no Indexed Job")
    check_kustomization(directory)
    for p in problems:
        print(f"ERROR {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
