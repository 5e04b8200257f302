//! Lambda function for the `stack-collaborator-remove` route.

stackhouse_lambda::route!(STACK_COLLABORATOR_REMOVE);
