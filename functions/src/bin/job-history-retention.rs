//! Lambda function for the `job-history-retention` job.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::run_job(&stackhouse::jobs::table::JOB_HISTORY_RETENTION)
}
