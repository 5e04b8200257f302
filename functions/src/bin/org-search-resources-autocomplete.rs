//! Lambda function for the `org-search-resources-autocomplete` route.

stackhouse_lambda::route!(ORG_SEARCH_RESOURCES_AUTOCOMPLETE);
