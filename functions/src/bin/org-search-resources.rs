//! Lambda function for the `org-search-resources` route.

stackhouse_lambda::route!(ORG_SEARCH_RESOURCES);
