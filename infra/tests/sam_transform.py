"""Runs the real SAM transform (aws-sam-translator) on every template under infra/ and fails
when a stack would exceed the resource budget or the HTTP API its route quota.

CloudFormation refuses a stack of more than 500 resources; we stop at 450 to keep room for
what a deployer adds (tags, alarms). An HTTP API takes 300 routes and 300 integrations by
default (an adjustable quota; we stay under the default). Run by .ci/test:

    .venv/bin/python infra/tests/sam_transform.py

It prints one line per stack with its resource count after the transform. STACK_LIMIT and
ROUTE_LIMIT override the limits (to see the check fail).
"""

import copy
import logging
import os
import pathlib
import sys

import yaml
from samtranslator.translator.transform import transform

STACK_LIMIT = int(os.environ.get("STACK_LIMIT", 450))
ROUTE_LIMIT = int(os.environ.get("ROUTE_LIMIT", 300))


class NoManagedPolicies:
    """The templates name no managed policy; the translator must not look any up."""

    def load(self):
        raise AssertionError("a template asked for an AWS managed policy")


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML (its short-form tags, should a template ever use them)."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def packaged(template):
    """The template as `sam package` hands it to CloudFormation: code uploaded to S3."""
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = f"s3://packaged/{name}.zip"
    return template


def main() -> int:
    # The transform fills in pseudo parameters such as AWS::Region; any region will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The translator's own usage metrics complain that nobody publishes them.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    infra = pathlib.Path(__file__).resolve().parent.parent
    paths = [infra / "template.yaml"] + sorted((infra / "stacks").glob("*.yaml"))
    failures = []
    routes = 0
    for path in paths:
        template = yaml.load(path.read_text(), Loader=CfnLoader)
        if "Transform" in template:
            out = transform(packaged(copy.deepcopy(template)), {}, NoManagedPolicies())
        else:
            out = template
        resources = out.get("Resources", {})
        count = len(resources)
        # Routes of the HTTP API only: the event stream's WebSocket API has its own quota.
        stack_routes = sum(
            1 for r in resources.values()
            if r.get("Type") == "AWS::ApiGatewayV2::Route"
            and r.get("Properties", {}).get("ApiId") == {"Ref": "HttpApi"}
        )
        socket_routes = sum(
            1 for r in resources.values()
            if r.get("Type") == "AWS::ApiGatewayV2::Route"
            and r.get("Properties", {}).get("ApiId") == {"Ref": "WebSocketApi"}
        )
        routes += stack_routes
        functions = sum(1 for r in resources.values() if r.get("Type") == "AWS::Lambda::Function")
        rel = path.relative_to(infra)
        print(f"{rel}: {count} resources after the SAM transform "
              f"({functions} functions, {stack_routes} routes"
              + (f", {socket_routes} WebSocket routes)" if socket_routes else ")"))
        if count > STACK_LIMIT:
            failures.append(f"{rel} has {count} resources (limit {STACK_LIMIT}): split its domain")
        if len(out.get("Parameters", {})) > 200:
            failures.append(f"{rel} has more than 200 parameters")
    print(f"HTTP API: {routes} routes (limit {ROUTE_LIMIT})")
    if routes > ROUTE_LIMIT:
        failures.append(f"the HTTP API has {routes} routes (quota {ROUTE_LIMIT})")
    if routes == 0:
        failures.append("no route found: the check read nothing")
    for f in failures:
        print("error:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
