//! Lambda function for the `org-search-stacks` route.

stackhouse_lambda::route!(ORG_SEARCH_STACKS);
