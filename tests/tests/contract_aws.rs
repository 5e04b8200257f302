//! The port contract suite against the AWS adapters on moto, over the network: the same checks
//! as `contract_embedded.rs`, each on fresh resources.

use std::time::Duration;

use stackhouse::ports::QueueSpec;
use stackhouse_tests::contract::Fixture;
use stackhouse_tests::server::{moto_target, Target};

async fn setup(check: &'static str) -> Fixture {
    let Target::Aws { endpoint, tag, guard } = moto_target(check) else {
        unreachable!("moto_target always gives an AWS target")
    };
    let mut cfg = stackhouse_tests::moto::aws_config_for(&endpoint, tag);
    cfg.queues = vec![QueueSpec {
        name: "contract".into(),
        max_receives: 3,
        visibility_timeout: Duration::from_secs(30),
    }];
    stackhouse::adapters::aws::provision(&cfg).await.expect("provision on moto");
    let ports = stackhouse::adapters::aws::connect(&cfg).await.expect("connect");
    let guards: Vec<Box<dyn std::any::Any + Send + Sync>> = match guard {
        Some(g) => vec![Box::new(g)],
        None => vec![],
    };
    // moto does not check presigned-URL signatures, so only the happy path is asserted there.
    Fixture { ports, queue: cfg.queues[0].clone(), presign_enforced: false, guards }
}

stackhouse_tests::contract_tests!(setup);
