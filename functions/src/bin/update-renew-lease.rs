//! Lambda function for the `update-renew-lease` route.

stackhouse_lambda::route!(UPDATE_RENEW_LEASE);
