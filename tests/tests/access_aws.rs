//! The permission matrix on the AWS backend (moto): the reading routes, which share one world;
//! the whole matrix runs on the embedded backend, where building a world per route is cheap.

stackhouse_tests::access_tests!(stackhouse_tests::server::moto_target, true);
