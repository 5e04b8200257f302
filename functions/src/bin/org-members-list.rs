//! Lambda function for the `org-members-list` route.

stackhouse_lambda::route!(ORG_MEMBERS_LIST);
