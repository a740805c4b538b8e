//! The fixture's OAuth authorization server, walked by hand as the spec's client would: the
//! sign-in tests stand on it, so it must refuse what a real authorization server refuses.

use base64::Engine as _;
use sha2::Digest as _;
use switchboard_fixture::{Fixture, Knobs};

const VERIFIER: &str = "a-verifier-long-enough-to-be-a-real-one-0123456789";
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

async fn post_mcp(http: &reqwest::Client, origin: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = http
        .post(format!("{origin}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// `pairs` as an `application/x-www-form-urlencoded` string (a query or a form body).
fn encoded(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn form(request: reqwest::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded(pairs))
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_fixture_grants_a_token_only_through_pkce_and_rotates_refresh_tokens() {
    let fixture = Fixture::start(Knobs {
        oauth: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let origin = fixture.url().trim_end_matches("/mcp").to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let refused = post_mcp(&http, &origin, None).await;
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{origin}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );

    let resource = json(
        http.get(format!("{origin}/.well-known/oauth-protected-resource/mcp"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resource["resource"], format!("{origin}/mcp"));
    let metadata = json(
        http.get(format!("{origin}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(metadata["issuer"], origin);

    let redirect = "http://127.0.0.1:9/callback";
    let client = json(
        http.post(format!("{origin}/register"))
            .json(&serde_json::json!({"redirect_uris": [redirect]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let client_id = client["client_id"].as_str().unwrap().to_owned();

    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let authorize = |resource: &str| {
        http.get(format!(
            "{origin}/authorize?{}",
            encoded(&[
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", redirect),
                ("state", "s-1"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("resource", resource),
            ])
        ))
        .send()
    };
    let elsewhere = authorize("http://127.0.0.1:1/mcp").await.unwrap();
    assert_eq!(
        elsewhere.status(),
        400,
        "a token for another resource is refused"
    );
    let approve = || async {
        let approved = authorize(&format!("{origin}/mcp")).await.unwrap();
        assert_eq!(approved.status(), 302);
        let back = url::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
        let param = |name: &str| {
            back.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
                .unwrap()
        };
        assert_eq!(param("state"), "s-1");
        assert_eq!(param("iss"), origin, "the issuer comes back (RFC 9207)");
        param("code")
    };
    let exchange = |code: String, verifier: &'static str| {
        form(
            http.post(format!("{origin}/token")),
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("code_verifier", verifier),
                ("redirect_uri", redirect),
                ("client_id", client_id.as_str()),
            ],
        )
        .send()
    };
    let code = approve().await;
    let wrong = exchange(code.clone(), "not-the-verifier").await.unwrap();
    assert_eq!(wrong.status(), 400, "a wrong PKCE verifier is refused");
    let tokens = json(exchange(code, VERIFIER).await.unwrap()).await;
    assert_eq!(
        tokens["error"], "invalid_grant",
        "a code is spent by its first exchange, even a refused one"
    );

    // Again, now with the right verifier on the first try.
    let tokens = json(exchange(approve().await, VERIFIER).await.unwrap()).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(post_mcp(&http, &origin, Some(&access)).await.status(), 200);

    fixture.authority().expire_access_tokens();
    assert_eq!(
        post_mcp(&http, &origin, Some(&access)).await.status(),
        401,
        "an expired access token is refused"
    );
    let refresh_with = |token: String| {
        form(
            http.post(format!("{origin}/token")),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ],
        )
        .send()
    };
    let renewed = json(refresh_with(refresh.clone()).await.unwrap()).await;
    let access = renewed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(post_mcp(&http, &origin, Some(&access)).await.status(), 200);
    let reused = json(refresh_with(refresh).await.unwrap()).await;
    assert_eq!(reused["error"], "invalid_grant", "refresh tokens rotate");

    fixture.authority().revoke_refresh_tokens();
    let revoked = renewed["refresh_token"].as_str().unwrap().to_owned();
    let after = json(refresh_with(revoked).await.unwrap()).await;
    assert_eq!(after["error"], "invalid_grant");
    let issued = fixture.authority().issued();
    assert_eq!((issued.sign_ins, issued.refreshes), (1, 1));
}
