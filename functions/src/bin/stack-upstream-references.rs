//! Lambda function for the `stack-upstream-references` route.

stackhouse_lambda::route!(STACK_UPSTREAM_REFERENCES);
