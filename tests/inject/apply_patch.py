"""Applies an RFC 6902 JSONPatch of "add" operations (all the webhook emits)
to a JSON document: apply_patch.py DOC.json PATCH.json > OUT.json. Fails on
any other operation or a path that does not exist, so a wrong patch shows."""
import json
import sys


def add(doc, path, value):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    target = doc
    for p in parts[:-1]:
        target = target[int(p)] if isinstance(target, list) else target[p]
    last = parts[-1]
    if isinstance(target, list):
        if last == "-":
            target.append(value)
        else:
            i = int(last)
            if i > len(target):
                raise SystemExit(f"index {i} past the end in {path}")
            target.insert(i, value)
    else:
        target[last] = value


def main():
    doc = json.load(open(sys.argv[1]))
    for op in json.load(open(sys.argv[2])):
        if op["op"] != "add":
            raise SystemExit(f"unexpected op {op['op']}")
        add(doc, op["path"], op["value"])
    json.dump(doc, sys.stdout, indent=1)


main()
