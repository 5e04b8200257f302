//! Lambda function for the `job-search-reindex` job.

stackhouse_lambda::job!(JOB_SEARCH_REINDEX);
