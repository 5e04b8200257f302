//! What a function uses of each port: declared per route and per job, it decides which AWS
//! adapters a function builds and links, and the IAM statements its role gets.

/// Access a function needs to one port; drives which adapters it links and least-privilege IAM
/// (infra/).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Not used.
    None,
    /// Reads only.
    Read,
    /// Reads and writes.
    Write,
}

/// What a route or job uses of each port (declared in the route and job tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// DynamoDB table.
    pub meta: Access,
    /// S3 bucket.
    pub blobs: Access,
    /// SQS queues (write = send).
    pub queue: Access,
    /// KMS key (read = decrypt, write = generate data keys).
    pub keys: Access,
    /// WebSocket clients (write = post to and close connections through API Gateway's
    /// management API); `None` for every function but the event stream's.
    pub push: Access,
    /// Secrets outside Stackhouse (read = ESC's `aws-secrets` and `aws-parameter-store`
    /// providers, with the environment's own credentials): only the environment-open functions.
    pub external: Access,
    /// Deployment runners (write = start one: a CodeBuild build on AWS); `None` for every
    /// function but `job-deployment-start`.
    pub launch: Access,
}

impl Needs {
    /// The same, plus receiving from a queue (a queue-triggered job).
    pub const fn consuming(self) -> Needs {
        Needs { queue: Access::Read, ..self }
    }

    /// The same, plus pushing to WebSocket clients.
    pub const fn pushing(self) -> Needs {
        Needs { push: Access::Write, ..self }
    }

    /// The same, plus reading secrets from outside (an environment open).
    pub const fn reading_external(self) -> Needs {
        Needs { external: Access::Read, ..self }
    }

    /// The same, plus starting deployment runners.
    pub const fn launching(self) -> Needs {
        Needs { launch: Access::Write, ..self }
    }

    /// Uses no port (a route that answers from the binary alone, such as the API description).
    pub const NOTHING: Needs = Needs {
        meta: Access::None,
        blobs: Access::None,
        queue: Access::None,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads every port (the deep health check): the queue's `Read` is the consumer's
    /// access, the only one that may read queue attributes.
    pub const ALL_READ: Needs = Needs {
        meta: Access::Read,
        blobs: Access::Read,
        queue: Access::Read,
        keys: Access::Read,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads metadata only.
    pub const META_READ: Needs = Needs {
        meta: Access::Read,
        blobs: Access::None,
        queue: Access::None,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads and writes metadata only.
    pub const META_WRITE: Needs = Needs {
        meta: Access::Write,
        blobs: Access::None,
        queue: Access::None,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads metadata and blobs.
    pub const META_BLOB_READ: Needs = Needs {
        meta: Access::Read,
        blobs: Access::Read,
        queue: Access::None,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads and writes metadata, reads blobs (hands out presigned download URLs).
    pub const META_WRITE_BLOB_READ: Needs = Needs {
        meta: Access::Write,
        blobs: Access::Read,
        queue: Access::None,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads and writes metadata and blobs.
    pub const META_BLOB_WRITE: Needs = Needs {
        meta: Access::Write,
        blobs: Access::Write,
        queue: Access::None,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads and writes metadata and blobs, and pushes to WebSocket clients (an update's events
    /// batch: its watchers get the engine events live).
    pub const META_BLOB_WRITE_PUSH: Needs = Needs::META_BLOB_WRITE.pushing();
    /// Reads and writes metadata and sends messages: routes whose domain events queue webhook
    /// deliveries.
    pub const META_WRITE_EVENTS: Needs = Needs {
        meta: Access::Write,
        blobs: Access::None,
        queue: Access::Write,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads and writes metadata and blobs and sends messages (ends updates, so queues webhook
    /// deliveries).
    pub const META_BLOB_WRITE_EVENTS: Needs = Needs {
        meta: Access::Write,
        blobs: Access::Write,
        queue: Access::Write,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Writes metadata and encrypts with data keys (secrets and webhook signing secrets).
    pub const META_WRITE_KEYS: Needs = Needs {
        meta: Access::Write,
        blobs: Access::None,
        queue: Access::None,
        keys: Access::Write,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads metadata and decrypts with data keys.
    pub const META_READ_KEYS: Needs = Needs {
        meta: Access::Read,
        blobs: Access::None,
        queue: Access::None,
        keys: Access::Read,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Writes metadata, encrypts and sends messages (a deployment's settings sealed, its
    /// start queued).
    pub const META_WRITE_KEYS_EVENTS: Needs = Needs {
        meta: Access::Write,
        blobs: Access::None,
        queue: Access::Write,
        keys: Access::Write,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Writes metadata and decrypts (a webhook ping: records the delivery, signs it).
    pub const META_WRITE_KEYS_READ: Needs = Needs {
        meta: Access::Write,
        blobs: Access::None,
        queue: Access::None,
        keys: Access::Read,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads metadata and blobs and decrypts with data keys (an environment's definition with
    /// its secrets, a check).
    pub const META_BLOB_READ_KEYS: Needs = Needs {
        meta: Access::Read,
        blobs: Access::Read,
        queue: Access::None,
        keys: Access::Read,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// Reads and writes metadata and blobs and encrypts with data keys (an environment's new
    /// definition, its open sessions).
    pub const META_BLOB_WRITE_KEYS: Needs = Needs {
        meta: Access::Write,
        blobs: Access::Write,
        queue: Access::None,
        keys: Access::Write,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
    /// The same, plus reading secrets from outside: an environment's open, whose providers may
    /// read Secrets Manager or Parameter Store.
    pub const META_BLOB_WRITE_KEYS_EXTERNAL: Needs = Needs::META_BLOB_WRITE_KEYS.reading_external();
    /// Reads metadata and sends messages (a webhook redelivery).
    pub const META_READ_EVENTS: Needs = Needs {
        meta: Access::Read,
        blobs: Access::None,
        queue: Access::Write,
        keys: Access::None,
        push: Access::None,
        external: Access::None,
        launch: Access::None,
    };
}
