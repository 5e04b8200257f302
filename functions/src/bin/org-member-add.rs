//! Lambda function for the `org-member-add` route.

stackhouse_lambda::route!(ORG_MEMBER_ADD);
