//! Lambda function for the `job-lease-reaper` job.

fn main() -> Result<(), stackhouse::lambda::Error> {
    stackhouse::lambda::run_job(&stackhouse::jobs::table::JOB_LEASE_REAPER)
}
