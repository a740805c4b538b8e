//! Where the browser lands after the user approves: a one-shot listener on 127.0.0.1 at a
//! random port. It takes the one request to `/callback` that carries the sign-in's own `state`
//! (any other is told so and changes nothing), then closes; it closes after a timeout too.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse as _, Response};
use tokio::sync::mpsc;

use super::SignInError;

const PATH: &str = "/callback";

/// A bound redirect listener, not yet serving.
pub struct Redirect {
    listener: tokio::net::TcpListener,
    uri: String,
}

/// What the browser brought back: the whole callback URL, or the authorization server's refusal.
type Landing = Result<String, SignInError>;

#[derive(Clone)]
struct Expecting {
    state: String,
    base: String,
    landed: mpsc::Sender<Landing>,
    /// Set by the one landing that counts: any later one is refused, also before the listener
    /// has closed.
    used: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Redirect {
    pub async fn bind() -> Result<Self, SignInError> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| SignInError::Redirect(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| SignInError::Redirect(e.to_string()))?
            .port();
        Ok(Self {
            listener,
            uri: format!("http://127.0.0.1:{port}{PATH}"),
        })
    }

    /// The redirect URI to register and send.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Serves until the browser lands with `state` (the callback URL) or `within` passes; the
    /// listener is closed either way.
    pub async fn landed(self, state: String, within: Duration) -> Landing {
        let (landed, mut arrivals) = mpsc::channel(1);
        let base = self.uri.trim_end_matches(PATH).to_string();
        let app = axum::Router::new().fallback(arrive).with_state(Expecting {
            state,
            base,
            landed,
            used: Default::default(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(self.listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let outcome = tokio::time::timeout(within, arrivals.recv()).await;
        let _ = stop.send(());
        // The landing's page is answered first (a graceful end), a browser's idle keep-alive
        // connection is not waited for long; either way the listener is gone on return.
        let mut server = server;
        if tokio::time::timeout(Duration::from_secs(1), &mut server)
            .await
            .is_err()
        {
            server.abort();
            let _ = server.await;
        }
        match outcome {
            Ok(Some(landing)) => landing,
            Ok(None) => Err(SignInError::Redirect(
                "the redirect listener stopped".into(),
            )),
            Err(_) => Err(SignInError::TimedOut(within)),
        }
    }
}

async fn arrive(State(expecting): State<Expecting>, request: Request) -> Response {
    if request.uri().path() != PATH {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let query = request.uri().query().unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if value("state") != Some(expecting.state.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            page("This is not the sign-in Switchboard started. Nothing was changed."),
        )
            .into_response();
    }
    if expecting
        .used
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return (
            StatusCode::GONE,
            page("This sign-in is already complete. Nothing was changed."),
        )
            .into_response();
    }
    let landing = match value("error") {
        Some(error) => {
            let detail = value("error_description").unwrap_or(error);
            Err(SignInError::Refused(crate::session::bounded(detail)))
        }
        None => Ok(format!("{}{PATH}?{query}", expecting.base)),
    };
    let shown = match &landing {
        Ok(_) => page("Signed in. You can close this tab and go back to Switchboard."),
        Err(e) => page(&format!("The sign-in did not complete: {e}")),
    };
    // Only the first landing counts; the listener closes right after it.
    let _ = expecting.landed.try_send(landing);
    shown.into_response()
}

fn page(text: &str) -> Html<String> {
    let text = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Switchboard</title><p>{text}</p>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: &str) -> Result<(u16, String), reqwest::Error> {
        let response = reqwest::get(url).await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    #[tokio::test]
    async fn only_the_sign_ins_own_state_lands_and_then_the_listener_is_gone() {
        let redirect = Redirect::bind().await.unwrap();
        let uri = redirect.uri().to_string();
        assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
        let landing = tokio::spawn(redirect.landed("s1".into(), Duration::from_secs(10)));

        let (status, page) = get(&format!("{uri}?code=c&state=forged")).await.unwrap();
        assert_eq!(status, 400, "a foreign state is refused: {page}");
        let origin = uri.trim_end_matches(PATH);
        assert_eq!(get(&format!("{origin}/other")).await.unwrap().0, 404);
        let (status, page) = get(&format!("{uri}?code=c&state=s1&iss=x")).await.unwrap();
        assert_eq!(status, 200);
        assert!(page.contains("Signed in"), "{page}");

        let landed = landing.await.unwrap().unwrap();
        assert_eq!(landed, format!("{uri}?code=c&state=s1&iss=x"));
        assert!(
            get(&format!("{uri}?code=c&state=s1")).await.is_err(),
            "closed once the sign-in landed"
        );
    }

    #[tokio::test]
    async fn a_refusal_is_said_and_no_browser_means_a_timeout() {
        let redirect = Redirect::bind().await.unwrap();
        let uri = redirect.uri().to_string();
        let landing = tokio::spawn(redirect.landed("s".into(), Duration::from_secs(10)));
        let query = "error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=s";
        let (status, page) = get(&format!("{uri}?{query}")).await.unwrap();
        assert_eq!(status, 200);
        assert!(
            page.contains("&lt;b&gt;no"),
            "the server's text is escaped: {page}"
        );
        assert_eq!(
            landing.await.unwrap(),
            Err(SignInError::Refused("<b>no</b>".into()))
        );

        let idle = Redirect::bind().await.unwrap();
        let within = Duration::from_millis(50);
        assert_eq!(
            idle.landed("s".into(), within).await,
            Err(SignInError::TimedOut(within))
        );
    }
}
