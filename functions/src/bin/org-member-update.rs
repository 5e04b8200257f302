//! Lambda function for the `org-member-update` route.

stackhouse_lambda::route!(ORG_MEMBER_UPDATE);
