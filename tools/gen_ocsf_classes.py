#!/usr/bin/env python3
"""Regenerate schemas/ocsf/classes.json from an OCSF schema checkout.

Usage: python3 tools/gen_ocsf_classes.py ../shared/ocsf-1.8.0 > schemas/ocsf/classes.json

Keeps only facts the pipeline needs at run time: for each event class its uid, name,
category, activity captions, and which top-level attributes OCSF marks required or
recommended (after resolving `extends` and profile-free inheritance). The scorer uses the
requirement lists; the normalizer uses the captions to fill *_name siblings.
"""
import json
import os
import sys

root = sys.argv[1]
cats = json.load(open(os.path.join(root, "categories.json")))["attributes"]
dictionary = json.load(open(os.path.join(root, "dictionary.json")))["attributes"]
by_name = {}
for dirpath, _, files in os.walk(os.path.join(root, "events")):
    for f in files:
        d = json.load(open(os.path.join(dirpath, f)))
        by_name[d["name"]] = (d, os.path.basename(dirpath))


def resolved(name):
    d, _ = by_name[name]
    attrs = {}
    if d.get("extends"):
        attrs.update(resolved(d["extends"]))
    for k, v in d.get("attributes", {}).items():
        if k.startswith("$"):
            continue
        merged = dict(attrs.get(k, {}))
        merged.update(v or {})
        attrs[k] = merged
    return attrs


out = {"ocsf_version": json.load(open(os.path.join(root, "version.json")))["version"],
       "severity": {k: v["caption"] for k, v in dictionary["severity_id"]["enum"].items()},
       "categories": {str(v["uid"]): v["caption"] for v in cats.values()},
       "classes": {}}
for name, (d, folder) in sorted(by_name.items()):
    if "uid" not in d:
        continue
    cat_uid = cats[d.get("category", folder)]["uid"] if d.get("category", folder) in cats else 0
    class_uid = cat_uid * 1000 + d["uid"] if d["uid"] < 1000 else d["uid"]
    attrs = resolved(name)
    activities = {k: v["caption"] for k, v in attrs.get("activity_id", {}).get("enum", {}).items()}
    out["classes"][str(class_uid)] = {
        "name": d["caption"],
        "category_uid": cat_uid,
        "activities": activities,
        "required": sorted(k for k, v in attrs.items() if v.get("requirement") == "required"),
        "recommended": sorted(k for k, v in attrs.items() if v.get("requirement") == "recommended"),
    }
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
