//! Lambda function for the `job-admin-create-user` job (invoked by hand, see README).

stackhouse_lambda::job!(JOB_ADMIN_CREATE_USER);
