//! The deployment validator every entry point uses (create with state, import, checkpoints,
//! verbatim, delta results). Any bytes are refused or accepted without a panic; an accepted
//! deployment is one the server can read back, rebuild from its parts and accept again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stackhouse::service::deployments::{check_untyped, untyped, Envelope};

fuzz_target!(|data: &[u8]| {
    let Ok(summary) = check_untyped(data, 1..=4) else { return };
    assert!(summary.resource_count >= 0);
    // Readable as a whole, and inside the envelopes the server wraps around stored states.
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        panic!("accepted a deployment serde cannot read back")
    };
    assert!(doc.get("deployment").is_some_and(Value::is_object));
    let text = std::str::from_utf8(data).expect("accepted JSON is UTF-8");
    let wrapped = format!("{{\"snapshot\":{{\"base\":{text}}},\"more\":[{text}]}}");
    assert!(serde_json::from_str::<Value>(&wrapped).is_ok(), "unreadable once wrapped");
    // Rebuilt from its parts (as export and journal publish do) it is accepted again.
    let env: Envelope = serde_json::from_slice(data).expect("envelope of an accepted deployment");
    let rebuilt = untyped(env.version, env.features.as_deref(), env.deployment).expect("rebuild");
    let again = check_untyped(&rebuilt, 1..=4).expect("a rebuilt deployment is accepted again");
    assert_eq!(again.resource_count, summary.resource_count);
});
