use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::ResponseBody;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project! {
    /// The response future of [`OAuthEdge`](super::OAuthEdge).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // Admission is running; `inner` is the ready service it will call.
        Admitting {
            fut: BoxFuture<Result<Request<B>, Response<Bytes>>>,
            inner: Option<S>,
        },
        // The inner service is answering; its answer gets the caller's quota headers.
        Calling { #[pin] fut: S::Future, rate: Option<crate::quota::RateStatus> },
        // The edge is answering an endpoint request.
        Endpoint { fut: BoxFuture<Response<Bytes>> },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn admitting(fut: BoxFuture<Result<Request<B>, Response<Bytes>>>, inner: S) -> Self {
        ResponseFuture {
            state: State::Admitting {
                fut,
                inner: Some(inner),
            },
        }
    }

    pub(crate) fn calling(fut: S::Future, rate: Option<crate::quota::RateStatus>) -> Self {
        ResponseFuture {
            state: State::Calling { fut, rate },
        }
    }

    pub(crate) fn endpoint(fut: BoxFuture<Response<Bytes>>) -> Self {
        ResponseFuture {
            state: State::Endpoint { fut },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Admitting { fut, inner } => match ready!(fut.as_mut().poll(cx)) {
                    Ok(req) => {
                        let rate = req
                            .extensions()
                            .get::<crate::admission::Identity>()
                            .and_then(|i| i.rate);
                        let mut svc = inner.take().expect("polled after the inner call began");
                        let fut = svc.call(req);
                        this.state.set(State::Calling { fut, rate });
                    }
                    Err(resp) => return Poll::Ready(Ok(resp.map(ResponseBody::edge))),
                },
                StateProj::Calling { fut, rate } => {
                    let mut resp = ready!(fut.poll(cx))?;
                    if let Some(rate) = rate {
                        for (name, value) in rate.headers() {
                            resp.headers_mut().insert(name, value);
                        }
                    }
                    return Poll::Ready(Ok(resp.map(ResponseBody::inner)));
                }
                StateProj::Endpoint { fut } => {
                    let resp = ready!(fut.as_mut().poll(cx));
                    return Poll::Ready(Ok(resp.map(ResponseBody::edge)));
                }
            }
        }
    }
}
