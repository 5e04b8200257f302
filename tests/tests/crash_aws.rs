//! Crash at every storage write of the update paths, on the AWS adapters against moto.

stackhouse_tests::crash_tests!(stackhouse_tests::server::moto_target);
