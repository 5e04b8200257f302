//! Lambda function for the `registry-policy-packs-list` route.

stackhouse_lambda::route!(REGISTRY_POLICY_PACKS_LIST);
