#!/usr/bin/env python3
"""Checks real API replies against docs/openapi.json's schemas.

usage: openapi_check.py OPENAPI SCHEMA FILE [SCHEMA FILE ...]
FILE holds a reply's data as `cronix ... -o json` prints it; a list is
checked item by item. Exit 0, or 1 naming the first mismatch."""
import json
import sys

from jsonschema import Draft202012Validator


def main():
    doc = json.load(open(sys.argv[1]))
    args = sys.argv[2:]
    for name, path in zip(args[::2], args[1::2]):
        schema = {"$ref": "#/components/schemas/" + name,
                  "components": doc["components"]}
        v = Draft202012Validator(schema)
        data = json.load(open(path))
        items = data if isinstance(data, list) else [data]
        if not items:
            print(f"{path}: empty, nothing checked", file=sys.stderr)
            return 1
        for item in items:
            errs = sorted(v.iter_errors(item), key=lambda e: e.path)
            if errs:
                e = errs[0]
                print(f"{path} vs {name}: {list(e.path)}: {e.message}",
                      file=sys.stderr)
                return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
