//! Lambda function for the `job-update-materialise` job.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::run_job(&stackhouse::jobs::table::JOB_UPDATE_MATERIALISE)
}
