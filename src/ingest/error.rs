//! What can go wrong on the way in, typed by whose fault it is. `ingest` knows nothing about
//! HTTP: `api::error` maps each variant to a status code in one place.

/// What was wrong with one item of a batch, and where.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct ItemError {
    /// Position of the item in the batch (array index, NDJSON line, record number), or null for
    /// the whole body.
    pub index: Option<usize>,
    pub field: Option<String>,
    pub error: String,
}

impl ItemError {
    pub fn new(index: usize, field: Option<String>, error: String) -> ItemError {
        ItemError { index: Some(index), field, error }
    }
    pub fn body(error: String) -> ItemError {
        ItemError { index: None, field: None, error }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The sender's data is wrong: every reason, item by item.
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<ItemError>),
    /// Over a size limit (body bytes after decompression, items per request).
    #[error("{0}")]
    TooLarge(String),
    /// A content type or encoding logmon does not read.
    #[error("{0}")]
    Unsupported(String),
    /// The body did not arrive in time.
    #[error("{0}")]
    Timeout(String),
    /// More rows are waiting for their commit than the queue's budget: retry later.
    #[error("ingest queue is full ({0} rows waiting)")]
    Overloaded(usize),
    /// The database is unreachable or failed: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused rows the validator accepted (a constraint it does not know).
    #[error("the database refused the batch: {0}")]
    Rejected(String),
}

impl IngestError {
    /// A problem with the body as a whole (not one item).
    pub fn body(message: impl Into<String>) -> IngestError {
        IngestError::Invalid(vec![ItemError::body(message.into())])
    }
}

fn invalid_message(details: &[ItemError]) -> String {
    let n = details.iter().filter_map(|d| d.index).collect::<std::collections::BTreeSet<_>>().len();
    if n == 0 {
        "invalid request body; nothing was stored".to_string()
    } else {
        format!("{n} invalid item(s); nothing of this batch was stored")
    }
}
