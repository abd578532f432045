#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Validate JSON lines against docs/envelope.schema.json.

A small validator for the JSON Schema subset the envelope schema uses
(type, enum, required, properties, additionalProperties, items, minimum,
minLength, pattern, oneOf, $ref to #/$defs).  Python standard library only.

usage: schema_check.py SCHEMA [FILE...]   (stdin when no FILE)
exit 0 when every line validates, 1 otherwise (first errors printed).
"""
import json
import re
import sys

TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


class Validator:
    def __init__(self, schema):
        self.root = schema

    def resolve(self, ref):
        assert ref.startswith("#/"), ref
        node = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def errors(self, s, v, path="$"):
        if "$ref" in s:
            yield from self.errors(self.resolve(s["$ref"]), v, path)
            return
        if "oneOf" in s:
            ok = [sub for sub in s["oneOf"] if not any(True for _ in self.errors(sub, v, path))]
            if len(ok) != 1:
                yield "%s: matches %d of the oneOf alternatives" % (path, len(ok))
            return
        t = s.get("type")
        if t is not None:
            ts = t if isinstance(t, list) else [t]
            if not any(TYPES[x](v) for x in ts):
                yield "%s: %r is not of type %s" % (path, v, t)
                return
        if "enum" in s and v not in s["enum"]:
            yield "%s: %r not in %r" % (path, v, s["enum"])
        if isinstance(v, str):
            if len(v) < s.get("minLength", 0):
                yield "%s: too short" % path
            if "pattern" in s and not re.search(s["pattern"], v):
                yield "%s: %r does not match %s" % (path, v, s["pattern"])
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if "minimum" in s and v < s["minimum"]:
                yield "%s: %r < %r" % (path, v, s["minimum"])
        if isinstance(v, dict):
            for k in s.get("required", []):
                if k not in v:
                    yield "%s: missing %r" % (path, k)
            props = s.get("properties", {})
            extra = s.get("additionalProperties", True)
            for k, sub in v.items():
                if k in props:
                    yield from self.errors(props[k], sub, "%s.%s" % (path, k))
                elif extra is False:
                    yield "%s: unexpected property %r" % (path, k)
                elif isinstance(extra, dict):
                    yield from self.errors(extra, sub, "%s.%s" % (path, k))
        if isinstance(v, list) and "items" in s:
            for i, sub in enumerate(v):
                yield from self.errors(s["items"], sub, "%s[%d]" % (path, i))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    val = Validator(json.load(open(sys.argv[1])))
    files = sys.argv[2:] or ["-"]
    n = bad = 0
    for f in files:
        fp = sys.stdin if f == "-" else open(f, encoding="utf-8")
        for lineno, line in enumerate(fp, 1):
            if not line.strip():
                continue
            n += 1
            try:
                doc = json.loads(line)
            except ValueError as e:
                bad += 1
                if bad <= 10:
                    print("%s:%d: invalid JSON: %s" % (f, lineno, e))
                continue
            errs = list(val.errors(val.root, doc))
            if errs:
                bad += 1
                if bad <= 10:
                    print("%s:%d: %s" % (f, lineno, "; ".join(errs[:3])))
    print("schema_check: %d envelopes, %d invalid" % (n, bad))
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
