//! Lambda function for the `job-admin-create-user` job (invoked by hand, see README).

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::run_job(&stackhouse::jobs::table::JOB_ADMIN_CREATE_USER)
}
