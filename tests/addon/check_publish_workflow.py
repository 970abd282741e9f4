#!/usr/bin/env python3
"""Checks .github/workflows/publish.yaml, which cannot run here, against what it must agree with:
addon/config.yaml (architectures, image name, version) and cross/arch.sh (each architecture's
platform), and that every action it uses is pinned. PyYAML is the loader the Supervisor uses too.
    check_publish_workflow.py REPO_ROOT
Prints one line per problem and exits 1, or prints the checks that passed and exits 0."""
import re
import subprocess
import sys

import yaml

root = sys.argv[1] if len(sys.argv) > 1 else "."
problems = []
checks = 0


def check(condition, message):
    global checks
    checks += 1
    if not condition:
        problems.append(message)


with open(f"{root}/.github/workflows/publish.yaml", encoding="utf-8") as f:
    workflow = yaml.safe_load(f)
with open(f"{root}/addon/config.yaml", encoding="utf-8") as f:
    config = yaml.safe_load(f)

# YAML 1.1 (PyYAML) reads the key `on` as the boolean true.
triggers = workflow.get("on", workflow.get(True))
check(isinstance(triggers, dict) and "push" in triggers, "the workflow must run on push")
tags = (triggers or {}).get("push", {}).get("tags", [])
check(tags == ["v*"], f"it must run on version tags only (v*), not {tags}")

job = workflow["jobs"]["build"]
include = job["strategy"]["matrix"]["include"]
archs = [entry["arch"] for entry in include]
check(sorted(archs) == sorted(config["arch"]),
      f"matrix architectures {archs} differ from config.yaml's {config['arch']}")
for entry in include:
    platform = subprocess.run(
        ["sh", "-c", f'. "{root}/cross/arch.sh" && dinodia_arch "$1" && echo "$OCI_PLATFORM"',
         "sh", entry["arch"]], capture_output=True, text=True, check=False).stdout.strip()
    check(entry.get("platform") == platform,
          f"{entry['arch']}: platform {entry.get('platform')} but cross/arch.sh says {platform}")
check(job.get("env", {}).get("DOCKER_DEFAULT_PLATFORM") == "${{ matrix.platform }}",
      "DOCKER_DEFAULT_PLATFORM must be the matrix platform")
check(job.get("permissions", {}).get("packages") == "write", "pushing needs packages: write")
check(job.get("permissions", {}).get("id-token") == "write", "cosign signing needs id-token: write")

steps = job["steps"]
runs = "\n".join(step.get("run", "") for step in steps)
check("./scripts/stage-addon.sh staged" in runs, "the add-on folder must be staged into staged/")
check("addon/config.yaml" in runs and "GITHUB_REF_NAME" in runs,
      "the version must come from config.yaml and match the tag")

builds = [s for s in steps if s.get("uses", "").startswith("home-assistant/builder/actions/build-image@")]
check(len(builds) == 1, "exactly one step must use home-assistant/builder/actions/build-image")
if builds:
    w = builds[0]["with"]
    expected_image = config["image"].replace("{arch}", "${{ matrix.arch }}")
    check(w.get("image") == expected_image, f"image {w.get('image')} is not config.yaml's {expected_image}")
    check(w.get("arch") == "${{ matrix.arch }}", "arch must be the matrix architecture")
    check(w.get("context") == "staged/dinodia-hub-agent", "the context must be the staged add-on folder")
    check(str(w.get("push")) == "true", "the images must be pushed")
    check("${{ steps.version.outputs.version }}" in str(w.get("image-tags")),
          "the image must be tagged with the add-on version")

for step in steps:
    uses = step.get("uses")
    if uses is None:
        continue
    check(re.fullmatch(r"[\w.-]+/[\w./-]+@([0-9a-f]{40}|v\d+)", uses) is not None,
          f"{uses} must be pinned to a commit or a major version")

if problems:
    for p in problems:
        print(f"publish.yaml: {p}")
    sys.exit(1)
print(f"publish.yaml: {checks} checks passed")
