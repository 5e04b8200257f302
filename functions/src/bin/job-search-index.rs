//! Lambda function for the `job-search-index` job.

stackhouse_lambda::job!(JOB_SEARCH_INDEX);
