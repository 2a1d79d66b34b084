"""Pulls the commands out of deploy/kubernetes/ for scripts/k8s-emulate.

Writes into OUT: `init.sh` (the shard Job's start-at init container),
`shard.sh` (its bench container), `merge.args` (the merge Job's arguments,
one a line, `$(VAR)` left for the caller) and `shards` (completions, N).
Paths stay as in the pod (/results, /run/bench, /etc/bench,
/usr/local/bin/bench); the caller maps them to local directories.

    python extract.py DIR OUT
"""

import os
import sys

import yaml


def docs(directory):
    for name in sorted(os.listdir(directory)):
        if name.endswith(".yaml") and not name.startswith("kustomization."):
            with open(os.path.join(directory, name)) as f:
                yield from (d for d in yaml.safe_load_all(f) if d)


def script(container):
    cmd = container["command"]
    if len(cmd) < 3 or not cmd[0].endswith("sh") or cmd[1] != "-c":
        raise SystemExit(f"container {container['name']}: expected `sh -c SCRIPT`, got {cmd}")
    return cmd[2]


def main(directory, out):
    jobs = {d["metadata"]["name"]: d for d in docs(directory) if d.get("kind") == "Job"}
    shards = jobs["bench-shards"]["spec"]
    pod = shards["template"]["spec"]
    init = next(c for c in pod["initContainers"] if c["name"] == "start-at")
    main_container = next(c for c in pod["containers"] if c["name"] == "bench")
    merge = jobs["bench-merge"]["spec"]["template"]["spec"]["containers"][0]
    files = {
        "init.sh": script(init),
        "shard.sh": script(main_container),
        "merge.args": "\n".join(merge["args"]) + "\n",
        "shards": f"{shards['completions']}\n",
    }
    for name, text in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
