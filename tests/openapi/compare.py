"""Compares our API description (docs/openapi.json) with Pulumi Cloud's, as its official REST
client publishes it (the `pulumi-cloud-sdk` package, generated from Pulumi's API description).

For every route of ours that Pulumi Cloud also has (same method, same path up to parameter
names; our `{kind}` stands for `update`, `preview`, `refresh` and `destroy`), the request and
answer schemas are compared field by field: JSON names and JSON types, into nested objects.
Every difference must be listed in docs/OPENAPI-DIFFERENCES.md as `fixed` (our shape changed:
it must no longer appear) or `intended` (with a reason; it must still appear, so the list
stays true). Exits 1 on an unlisted difference, a `fixed` one that is back, or a stale entry.

Usage: .venv/bin/python tests/openapi/compare.py [--print]
  --print  lists every difference found as table rows (to start an entry), then checks.
"""

import ast
import importlib.metadata
import json
import os
import re
import sys

import pulumi_cloud_sdk
from pulumi_cloud_sdk import models as sdk_models

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "openapi.json")
LISTED = os.path.join(ROOT, "docs", "OPENAPI-DIFFERENCES.md")
KINDS = ["update", "preview", "refresh", "destroy"]
# How deep nested objects are compared (top-level fields are depth 1).
MAX_DEPTH = 3


def sdk_operations():
    """(method, path template, body model, answer model) of every operation of the client,
    read from its generated source (each operation names its path, method, body parameter and
    response type there)."""
    ops = []
    apis = os.path.join(os.path.dirname(pulumi_cloud_sdk.__file__), "apis")
    for name in sorted(os.listdir(apis)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(apis, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            types = {
                a.arg: a.annotation.value
                for a in node.args.args
                if isinstance(a.annotation, ast.Constant)
            }
            path = method = answer = body = None
            for sub in ast.walk(node):
                if isinstance(sub, ast.Assign) and len(sub.targets) == 1:
                    target = sub.targets[0]
                    if isinstance(target, ast.Name) and target.id == "resource_path":
                        if isinstance(sub.value, ast.Constant):
                            path = sub.value.value
                    if isinstance(target, ast.Name) and target.id == "body_params":
                        if isinstance(sub.value, ast.Name):
                            body = types.get(sub.value.id)
                if (
                    isinstance(sub, ast.Call)
                    and isinstance(sub.func, ast.Attribute)
                    and sub.func.attr == "call_api"
                ):
                    if len(sub.args) > 1 and isinstance(sub.args[1], ast.Constant):
                        method = sub.args[1].value
                    for kw in sub.keywords:
                        if kw.arg == "response_type" and isinstance(kw.value, ast.Constant):
                            answer = kw.value.value
            if path and method:
                ops.append((method.upper(), path, body, answer, node.name))
    return ops


def shape_of_path(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


# ---- Normalised types: ("any",), ("string",), ("array", item), ("map", value),
# ("object", {json name: type thunk}, label) -------------------------------------------------


class Ours:
    def __init__(self, doc):
        self.schemas = doc["components"]["schemas"]

    def resolve(self, schema):
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
            seen += 1
        return schema

    def norm(self, schema):
        label = schema.get("$ref", "").rsplit("/", 1)[-1] if isinstance(schema, dict) else ""
        schema = self.resolve(schema)
        if schema is True or schema == {} or not isinstance(schema, dict):
            return ("any",)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [o for o in schema[key] if self.resolve(o).get("type") != "null"]
                if len(options) == 1:
                    return self.norm(options[0])
                return ("any",)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if len(kinds) == 1 else None
        if kind is None and "properties" in schema:
            kind = "object"
        if kind is None:
            return ("any",)
        if kind == "array":
            return ("array", lambda: self.norm(schema.get("items", True)))
        if kind == "object":
            if "properties" in schema:
                props = schema["properties"]
                return ("object", {k: (lambda v=v: self.norm(v)) for k, v in props.items()}, label)
            extra = schema.get("additionalProperties", True)
            if extra is True or extra == {}:
                return ("any",)
            return ("map", lambda: self.norm(extra))
        return (kind,)


class Theirs:
    PRIMITIVES = {
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "datetime": "string",
        "date": "string",
        "bytearray": "string",
    }

    def norm(self, name):
        if name is None:
            return None
        name = name.strip()
        if name in ("object", "Any", "Dict", "dict"):
            return ("any",)
        if name in self.PRIMITIVES:
            return (self.PRIMITIVES[name],)
        if name.startswith("list[") and name.endswith("]"):
            inner = name[5:-1]
            return ("array", lambda: self.norm(inner))
        if name.startswith("dict[") and name.endswith("]"):
            inner = name[5:-1].split(",", 1)[1]
            return ("map", lambda: self.norm(inner))
        model = getattr(sdk_models, name, None)
        if model is None:
            return ("any",)
        if hasattr(model, "__swagger_types__"):
            types = model.__swagger_types__
            names = model.__attribute_map__
            fields = {names[attr]: (lambda t=t: self.norm(t)) for attr, t in types.items()}
            return ("object", fields, name)
        values = [getattr(v, "value", v) for v in model.keys()] if hasattr(model, "keys") else []
        if values and all(isinstance(v, int) for v in values):
            return ("integer",)
        return ("string",)


def describe(t):
    if t[0] == "object":
        return f"object {t[2]}".strip()
    if t[0] == "array":
        return f"array of {describe(t[1]())}"
    if t[0] == "map":
        return f"map of {describe(t[1]())}"
    return t[0]


def compare(ours, theirs, where, depth, out, seen):
    """Appends (where, difference) for every way `ours` differs from `theirs`."""
    if ours[0] == "any" or theirs[0] == "any":
        return
    if ours[0] == "integer" and theirs[0] == "number":
        return  # JSON has one number type; an integer is a number.
    if ours[0] != theirs[0]:
        out.append((where or "(body)", f"type: ours {describe(ours)}, Pulumi Cloud {describe(theirs)}"))
        return
    if ours[0] in ("array", "map"):
        suffix = "[]" if ours[0] == "array" else "{}"
        compare(ours[1](), theirs[1](), (where or "") + suffix, depth, out, seen)
        return
    if ours[0] != "object" or depth > MAX_DEPTH:
        return
    key = (ours[2], theirs[2])
    if key in seen:
        return
    seen = seen | {key}
    mine, pulumi = ours[1], theirs[1]
    prefix = f"{where}." if where else ""
    for name in sorted(set(mine) | set(pulumi)):
        if name not in mine:
            out.append((prefix + name, f"missing (Pulumi Cloud: {describe(pulumi[name]())})"))
        elif name not in pulumi:
            out.append((prefix + name, f"extra (ours: {describe(mine[name]())})"))
        else:
            compare(mine[name](), pulumi[name](), prefix + name, depth + 1, out, seen)


def body_schema(op, part, status=None):
    if part == "request":
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
    else:
        body = op["responses"].get(status, {}).get("content", {}).get("application/json")
    return None if body is None else body.get("schema")


def differences(doc):
    """(route, direction, where, difference) of every route we share; and the routes Pulumi
    Cloud's description does not have."""
    ours, theirs = Ours(doc), Theirs()
    index = {}
    for method, path, body, answer, name in sdk_operations():
        index.setdefault((method, shape_of_path(path)), []).append((body, answer, name))
    found, unshared = set(), []
    for path, item in sorted(doc["paths"].items()):
        for method, op in sorted(item.items()):
            paths = [path.replace("{kind}", k) for k in KINDS] if "{kind}" in path else [path]
            matches = []
            for p in paths:
                matches += index.get((method.upper(), shape_of_path(p)), [])
            if not matches:
                unshared.append(op["operationId"])
                continue
            success = sorted(k for k in op["responses"] if k.startswith("2"))
            for body, answer, _ in matches:
                for direction, mine, pulumi in (
                    ("request", body_schema(op, "request"), body),
                    ("response", body_schema(op, "response", success[0] if success else None), answer),
                ):
                    if mine is None and pulumi is None:
                        continue
                    if pulumi is None:
                        continue  # Pulumi Cloud's description says nothing (no body, or undeclared).
                    if mine is None:
                        found.add((op["operationId"], direction, "(body)", f"none here; Pulumi Cloud: {pulumi}"))
                        continue
                    out = []
                    compare(ours.norm(mine), theirs.norm(pulumi), "", 1, out, frozenset())
                    for where, what in out:
                        found.add((op["operationId"], direction, where, what))
    return sorted(found), unshared


def listed():
    """The table of docs/OPENAPI-DIFFERENCES.md: {(route, direction, where, difference): (status, reason)}."""
    rows = {}
    with open(LISTED, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("| ") or line.startswith("| route ") or line.startswith("|---"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if len(cells) != 6:
                raise SystemExit(f"{LISTED}: a row needs 6 cells: {line.strip()}")
            route, direction, where, what, status, reason = (c.strip("`") for c in cells)
            rows[(route, direction, where, what)] = (status, reason)
    return rows


def cell(text):
    return text.replace("|", "\\|")


def main():
    with open(DOC, encoding="utf-8") as f:
        doc = json.load(f)
    found, unshared = differences(doc)
    if "--print" in sys.argv:
        for route, direction, where, what in found:
            print(f"| `{route}` | {direction} | `{where}` | {cell(what)} | intended | |")
    rows = listed()
    problems = []
    for status, reason in rows.values():
        if status not in ("fixed", "intended") or (status == "intended" and not reason):
            problems.append(f"an entry must be `fixed` or `intended` with a reason: {status} {reason}")
    current = {(r, d, w, cell(x)) for r, d, w, x in found}
    for key in sorted(current):
        entry = rows.get(key)
        if entry is None:
            problems.append("unlisted difference: " + " | ".join(key))
        elif entry[0] == "fixed":
            problems.append("a difference marked fixed is back: " + " | ".join(key))
    for key, (status, _) in sorted(rows.items()):
        if status == "intended" and key not in current:
            problems.append("listed as intended but no longer differs (mark it fixed): " + " | ".join(key))
    fixed = sum(1 for s, _ in rows.values() if s == "fixed")
    intended = sum(1 for s, _ in rows.values() if s == "intended")
    shared = len({r for r, *_ in found})
    print(
        f"compared with pulumi-cloud-sdk {importlib.metadata.version('pulumi-cloud-sdk')}: "
        f"{len(found)} differences on {shared} routes ({intended} listed as intended; {fixed} listed as fixed); "
        f"not in Pulumi Cloud's description: {', '.join(unshared)}"
    )
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} problems: update {os.path.relpath(LISTED, ROOT)} (or our shapes)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
