"""Prints the README's conformance table: every client scenario the suite lists, with each
protocol version's outcome from a run's results. Usage: table.py LIST RESULTS VERSION..."""

import glob
import json
import re
import sys

listing, results, versions = sys.argv[1], sys.argv[2], sys.argv[3:]

scenarios = []  # (name, the versions it applies to, or None for an extension)
section = None
for line in open(listing):
    if line.rstrip().endswith("scenarios (test against a client):"):
        section = "client"
        continue
    if line.rstrip().endswith(":"):
        section = None
    match = re.match(r"\s+- (\S+) \[(.*)\]", line)
    if section == "client" and match:
        tags = match.group(2).split(",")
        scenarios.append((match.group(1), None if tags == ["extension"] else tags))


def outcome(name, version):
    runs = glob.glob(f"{results}/{version}/{name}-2*/checks.json")
    if not runs:
        return None
    checks = json.load(open(runs[0]))
    passed = sum(c["status"] == "SUCCESS" for c in checks)
    failed = sum(c["status"] == "FAILURE" for c in checks)
    return passed, failed


print("| client scenario | " + " | ".join(versions) + " |")
print("|---|" + "---|" * len(versions))
for name, applies in scenarios:
    cells = []
    for version in versions:
        if applies is None:
            cells.append("not run: an extension, in neither version")
            continue
        if version not in applies:
            cells.append("n/a (not in this version)")
            continue
        result = outcome(name, version)
        if result is None:
            cells.append("**not run**")
        elif result[1] == 0:
            plural = "" if result[0] == 1 else "s"
            cells.append(f"pass ({result[0]} check{plural})")
        else:
            cells.append(f"**FAIL** ({result[1]} of {sum(result)} checks)")
    print(f"| `{name}` | " + " | ".join(cells) + " |")
