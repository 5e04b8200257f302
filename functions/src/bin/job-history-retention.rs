//! Lambda function for the `job-history-retention` job.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::run_job(&stackhouse::jobs::table::JOB_HISTORY_RETENTION)
}
