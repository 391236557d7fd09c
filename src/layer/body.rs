use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The response body of [`OAuthEdge`](super::OAuthEdge): the edge's own answer, or the
    /// inner service's body untouched.
    #[project = BodyProj]
    // The variants' single field is the body; pin-project-lite takes no docs on it.
    #[allow(missing_docs)]
    pub enum ResponseBody<B> {
        /// An answer written by the edge.
        Edge { #[pin] body: Full<Bytes> },
        /// The inner service's body.
        Inner { #[pin] body: B },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn edge(bytes: Bytes) -> Self {
        ResponseBody::Edge {
            body: Full::new(bytes),
        }
    }

    pub(crate) fn inner(body: B) -> Self {
        ResponseBody::Inner { body }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            BodyProj::Edge { body } => body.poll_frame(cx).map_err(|e| match e {}),
            BodyProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Edge { body } => body.is_end_stream(),
            ResponseBody::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Edge { body } => body.size_hint(),
            ResponseBody::Inner { body } => body.size_hint(),
        }
    }
}
