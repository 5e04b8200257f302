//! Lambda function for the `stack-downstream-references` route.

stackhouse_lambda::route!(STACK_DOWNSTREAM_REFERENCES);
