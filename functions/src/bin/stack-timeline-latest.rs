//! Lambda function for the `stack-timeline-latest` route.

stackhouse_lambda::route!(STACK_TIMELINE_LATEST);
