//! Lambda function for the `policy-pack-publish` route.

stackhouse_lambda::route!(POLICY_PACK_PUBLISH);
