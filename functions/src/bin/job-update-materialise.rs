//! Lambda function for the `job-update-materialise` job.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::run_job(&stackhouse::jobs::table::JOB_UPDATE_MATERIALISE)
}
