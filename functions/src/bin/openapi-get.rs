//! Lambda function for the `openapi-get` route.

stackhouse_lambda::route!(OPENAPI_GET);
