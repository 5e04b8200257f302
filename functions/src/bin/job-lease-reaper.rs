//! Lambda function for the `job-lease-reaper` job.

fn main() -> Result<(), stackhouse_lambda::Error> {
    stackhouse_lambda::run_job(&stackhouse::jobs::table::JOB_LEASE_REAPER)
}
