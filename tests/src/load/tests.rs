//! Unit tests of the load generator's pure parts.

use reqwest::Method;

use super::driver::resource;
use super::recorder::route_label;

#[test]
fn route_labels_follow_the_protocol_shapes() {
    let s = "/api/stacks/o/p/s";
    assert_eq!(route_label(&Method::POST, "/api/stacks/o/p"), "POST stack-create");
    assert_eq!(route_label(&Method::GET, s), "GET stack");
    assert_eq!(route_label(&Method::DELETE, &format!("{s}?force=false")), "DELETE stack");
    assert_eq!(route_label(&Method::GET, &format!("{s}/export")), "GET export");
    assert_eq!(route_label(&Method::POST, &format!("{s}/update")), "POST update-create (update)");
    assert_eq!(route_label(&Method::POST, &format!("{s}/update/u1")), "POST update-start");
    assert_eq!(
        route_label(&Method::POST, &format!("{s}/update/u1/events/batch")),
        "POST events/batch"
    );
    assert_eq!(route_label(&Method::GET, "/api/capabilities"), "GET api/capabilities");
}

#[test]
fn padded_resources_have_the_asked_size() {
    let plain = resource("dev", 1, 0).to_string().len();
    let padded = resource("dev", 1, 16 * 1024).to_string().len();
    assert!(padded - plain >= 16 * 1024, "{plain} → {padded}");
}
