//! Lambda function for the `org-search-resources-v2` route.

stackhouse_lambda::route!(ORG_SEARCH_RESOURCES_V2);
