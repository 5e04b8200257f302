//! Lambda function for the `stack-timeline-version` route.

stackhouse_lambda::route!(STACK_TIMELINE_VERSION);
