//! Lambda function for the `stack-collaborator-set` route.

stackhouse_lambda::route!(STACK_COLLABORATOR_SET);
