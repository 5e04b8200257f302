"""Sample policy pack for stackhouse-test:index:Item resources.

- no-forbidden-value (mandatory): an Item whose `value` is "forbidden" fails the operation.
- no-padding (advisory): an Item that sets `padBytes` only gets a warning.
"""
from pulumi_policy import EnforcementLevel, PolicyPack, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

ITEM = "stackhouse-test:index:Item"


def no_forbidden_value(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type == ITEM and args.props.get("value") == "forbidden":
        report_violation(f"Item '{args.name}' has the forbidden value.")


def no_padding(args: ResourceValidationArgs, report_violation: ReportViolation):
    if args.resource_type == ITEM and "padBytes" in args.props:
        report_violation(f"Item '{args.name}' sets padBytes={args.props['padBytes']}.")


PolicyPack(
    name="stackhouse-test-policy",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="no-forbidden-value",
            description="Items must not hold the value 'forbidden'.",
            enforcement_level=EnforcementLevel.MANDATORY,
            validate=no_forbidden_value,
        ),
        ResourceValidationPolicy(
            name="no-padding",
            description="Items should not set padBytes.",
            enforcement_level=EnforcementLevel.ADVISORY,
            validate=no_padding,
        ),
    ],
)
