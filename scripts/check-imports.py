#!/usr/bin/env python3
"""Checks that each target of Package.swift declares exactly the modules its files import.

    swift package dump-package | scripts/check-imports.py [PACKAGE_DIR]

System modules (Foundation, Glibc, Testing, ...) are ignored. Exits 1 on any difference.
"""
import json, os, re, sys

SYSTEM = {"Foundation", "FoundationNetworking", "FoundationEssentials", "Glibc", "Darwin", "Dispatch",
          "Synchronization", "Testing", "XCTest", "_Concurrency"}
PRODUCT_MODULES = {"Metrics": {"Metrics", "CoreMetrics"}}

root = sys.argv[1] if len(sys.argv) > 1 else "."
package = json.load(sys.stdin)
failed = False
for target in package["targets"]:
    if target["type"] == "system":
        continue
    name = target["name"]
    path = target.get("path") or os.path.join("Tests" if target["type"] == "test" else "Sources", name)
    executables = {t["name"] for t in package["targets"] if t["type"] == "executable"}
    declared = set()
    for dependency in target.get("dependencies", []):
        kind, value = next(iter(dependency.items()))
        module = value[0]
        if module in executables:
            continue  # an executable a test runs: a build-order dependency, not an import
        declared |= PRODUCT_MODULES.get(module, {module})
    imported = set()
    for directory, _, files in os.walk(os.path.join(root, path)):
        for file in files:
            if file.endswith(".swift"):
                text = open(os.path.join(directory, file)).read()
                imported |= set(re.findall(r"^\s*(?:@testable\s+|@_exported\s+|package\s+|public\s+)?import\s+(?:struct\s+|class\s+|enum\s+|protocol\s+|func\s+)?(\w+)", text, re.M))
    imported -= SYSTEM
    missing = sorted(imported - declared)
    unused = sorted(m for m in declared - imported if not ({m} & {"CoreMetrics"}))
    # A product can bring more than one module (Metrics brings CoreMetrics): unused only if none is imported.
    unused = [m for m in unused if not (PRODUCT_MODULES.get(m, {m}) & imported)]
    if missing or unused:
        failed = True
        print(f"{name}: imports but does not declare {missing}; declares but does not import {unused}")
sys.exit(1 if failed else 0)
