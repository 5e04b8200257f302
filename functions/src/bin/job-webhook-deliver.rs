//! Lambda function for the `job-webhook-deliver` job.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::run_job(&stackhouse::jobs::table::JOB_WEBHOOK_DELIVER)
}
