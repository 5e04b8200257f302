//! Lambda function for the `org-registry-policy-pack-get` route.

stackhouse_lambda::route!(ORG_REGISTRY_POLICY_PACK_GET);
