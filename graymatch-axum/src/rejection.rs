//! The rejection of the [`GrayDecision`](crate::GrayDecision) extractor.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// No gray decision on the request: no [`GrayLayer`](graymatch_tower::GrayLayer)
/// ran before the handler. Responds 500 with a message naming the layer.
///
/// ```
/// use axum::response::IntoResponse;
/// let rejection = graymatch_axum::MissingGrayLayer::new();
/// assert_eq!(rejection.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
/// assert!(rejection.body_text().contains("GrayLayer"));
/// assert_eq!(rejection.into_response().status(), 500);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MissingGrayLayer {
    _priv: (),
}

impl MissingGrayLayer {
    /// The rejection.
    pub const fn new() -> Self {
        MissingGrayLayer { _priv: () }
    }

    /// `500 Internal Server Error`: a server misconfiguration, not a client error.
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The response body.
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MissingGrayLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no gray decision on this request: build the app with \
             graymatch_axum::VariantRouter, or wrap the whole Router with GrayLayer \
             (middleware added with Router::layer runs after routing)",
        )
    }
}

impl std::error::Error for MissingGrayLayer {}

impl IntoResponse for MissingGrayLayer {
    fn into_response(self) -> Response {
        (self.status(), self.body_text()).into_response()
    }
}
