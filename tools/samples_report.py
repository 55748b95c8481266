#!/usr/bin/env python3
"""Run `alertctx process` over every file in a samples directory and report, per file:
records in (outcomes), bundles, duplicates, dead letters, and the share of bundles whose class
is not Base Event. Checks that every record is accounted for (records = bundles + dups + dead).

Usage: python3 tools/samples_report.py [SAMPLES_DIR] [ALERTCTX_BINARY]

Deduplication is turned off for the count, so the share is over records, not bundles.
"""
import json
import os
import subprocess
import sys
import tempfile

samples = sys.argv[1] if len(sys.argv) > 1 else "../shared/samples"
binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/alertctx"
cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
cfg.write('[dedup]\nenabled = false\n[quality]\nreference_time = "none"\n')
cfg.close()
rows = []
for source in sorted(os.listdir(samples)):
    d = os.path.join(samples, source)
    if not os.path.isdir(d):
        continue
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        res = subprocess.run([binary, "process", "--config", cfg.name, "--dlq", "/dev/stdout", "--output", "/dev/stdout", path],
                             capture_output=True, text=True)
        if res.returncode != 0:
            print(f"FAILED {path}: {res.stderr}", file=sys.stderr)
            sys.exit(1)
        bundles = classed = dead = 0
        classes = {}
        sources = set()
        for line in res.stdout.splitlines():
            v = json.loads(line)
            if "reason" in v:
                dead += 1
                continue
            bundles += 1
            sources.add(v["provenance"]["source"])
            c = v["alert"]["class_uid"]
            classes[c] = classes.get(c, 0) + 1
            classed += c != 0
        total = [l for l in res.stderr.splitlines() if l.startswith("total")][0].split()
        records, b, dups, dl = map(int, total[1:5])
        assert b == bundles and dl == dead and records == b + dups + dl, (path, total)
        rows.append((source, name, records, bundles, dups, dead, classed, classes, sorted(sources)))
print(f"{'source':<18} {'file':<62} {'records':>7} {'bundles':>7} {'dups':>5} {'dead':>5} {'classed':>8}  classes / detected as")
agg = {}
for source, name, records, bundles, dups, dead, classed, classes, detected in rows:
    share = f"{100 * classed / bundles:.0f}%" if bundles else "-"
    print(f"{source:<18} {name[:62]:<62} {records:>7} {bundles:>7} {dups:>5} {dead:>5} {share:>8}  {dict(sorted(classes.items()))} {detected}")
    a = agg.setdefault(source, [0, 0, 0])
    a[0] += records
    a[1] += bundles
    a[2] += classed
print()
print("| source | records | bundles | dead letters | class other than Base Event |")
print("|---|---|---|---|---|")
for source, (records, bundles, classed) in agg.items():
    share = f"{classed} ({100 * classed / bundles:.0f}%)" if bundles else "-"
    print(f"| `{source}` | {records} | {bundles} | {records - bundles} | {share} |")
