"""Prints the README's server conformance table from a run's logs (one per scenario and
protocol version, in RESULTS/server-VERSION/SCENARIO.log), and writes one summary line per
version to RESULTS/server-summary.txt. Usage: server_table.py RESULTS SCENARIO..."""

import glob
import os
import re
import sys

results, scenarios = sys.argv[1], sys.argv[2:]
versions = sorted(
    os.path.basename(d)[len("server-"):] for d in glob.glob(f"{results}/server-*") if os.path.isdir(d)
)


def outcome(version, scenario):
    """(cell text, passed checks, failed checks, passed?, expected failure?) or None if skipped."""
    text = open(f"{results}/server-{version}/{scenario}.log", errors="replace").read()
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if "SKIPPED:" in text:
        return None
    counts = re.search(r"Passed: (\d+)/(\d+), (\d+) failed", text)
    passed, total, failed = (int(g) for g in counts.groups()) if counts else (0, 0, 0)
    expected = f"~ {scenario}" in text
    if failed == 0:
        cell = f"pass ({passed} checks)"
    elif expected:
        cell = f"expected failure: {failed} of {total} checks fail (see expected-failures.yml)"
    else:
        cell = f"FAIL ({failed} of {total} checks)"
    return cell, passed, failed, failed == 0, expected


rows = {(v, s): outcome(v, s) for v in versions for s in scenarios}
print("| server scenario | " + " | ".join(versions) + " |")
print("|---|" + "---|" * len(versions))
for scenario in scenarios:
    cells = [rows[(v, scenario)][0] if rows[(v, scenario)] else "n/a (not in this version)" for v in versions]
    print(f"| `{scenario}` | " + " | ".join(cells) + " |")

with open(f"{results}/server-summary.txt", "w") as summary:
    for version in versions:
        ran = [rows[(version, s)] for s in scenarios if rows[(version, s)]]
        summary.write(
            f"==> server, protocol {version}: {sum(r[3] for r in ran)} of {len(ran)} scenarios passed, "
            f"{sum(r[1] for r in ran)} checks passed, {sum(r[2] for r in ran)} failed; "
            f"{sum(r[4] for r in ran)} scenarios expected to fail\n"
        )
