//! Lambda function for the `org-member-remove` route.

stackhouse_lambda::route!(ORG_MEMBER_REMOVE);
