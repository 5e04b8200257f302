//! Lambda function for the `org-search-resources-export` route.

stackhouse_lambda::route!(ORG_SEARCH_RESOURCES_EXPORT);
