//! The push port on API Gateway's WebSocket API: frames are posted to connections through its
//! management API (`PostToConnection`, `DeleteConnection`), whose endpoint is the API's stage
//! URL (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`).

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;

use super::readable;
use crate::ports::{Push, PushError};

/// Posts to the connections of one WebSocket API stage.
#[derive(Debug, Clone)]
pub struct ApiGatewayPush {
    client: Client,
}

impl ApiGatewayPush {
    /// A pusher through `client` (whose endpoint is the stage URL).
    pub fn new(client: Client) -> ApiGatewayPush {
        ApiGatewayPush { client }
    }
}

/// `GoneException` (410): the client disconnected; anything else may be retried.
fn classify<E, R>(connection: &str, err: SdkError<E, R>) -> PushError
where
    E: std::error::Error + aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let gone = err.as_service_error().is_some_and(|e| e.code() == Some("GoneException"));
    if gone {
        PushError::Gone(connection.to_string())
    } else {
        PushError::Unavailable(format!("API Gateway management API: {}", readable(&err)))
    }
}

#[async_trait]
impl Push for ApiGatewayPush {
    async fn send(&self, connection: &str, frame: &str) -> Result<(), PushError> {
        self.client
            .post_to_connection()
            .connection_id(connection)
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(connection, e))
    }

    async fn close(&self, connection: &str) -> Result<(), PushError> {
        self.client
            .delete_connection()
            .connection_id(connection)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(connection, e))
    }
}
