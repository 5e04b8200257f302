//! Lambda function for the `job-webhook-deliver` job.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::run_job(&stackhouse::jobs::table::JOB_WEBHOOK_DELIVER)
}
