//! Auth: token by query, by header and by first frame; expired and invalid
//! tokens; late or wrong first frames; forbidden rooms; origins.

mod common;

use common::*;
use serde_json::json;

const AUTH: [&str; 2] = ["--jwt-secret", SECRET];

#[tokio::test]
async fn token_in_query_or_header_authenticates_before_welcome() {
    let srv = start(&AUTH).await;
    let t = token("alice", None, 60);
    let (_, welcome) = srv.client(&format!("?token={t}")).await;
    assert_eq!(welcome["user"], "alice");

    let auth = format!("bearer {}", token("bob", None, 60));
    let mut c = Client::connect(&srv.url(""), &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(c.expect("welcome").await["user"], "bob");
    // `?user=` is ignored when auth is on: the token decides.
    let (_, w) = srv.client(&format!("?user=mallory&token={t}")).await;
    assert_eq!(w["user"], "alice");
}

#[tokio::test]
async fn expired_or_invalid_token_gets_401_with_reason() {
    let srv = start(&AUTH).await;
    let (status, body) = refused(&srv.url(&format!("?token={}", token("a", None, -30))), &[]).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");
    let (status, body) = refused(&srv.url("?token=not.a.jwt"), &[]).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid"), "{body}");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub":"a","exp": now_secs() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"other-secret"),
    )
    .unwrap();
    let (status, body) = refused(
        &srv.url(""),
        &[("Authorization", &format!("Bearer {forged}"))],
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("signature"), "{body}");
    assert!(srv.metric("auth_failures_total").await >= 3.0);
}

#[tokio::test]
async fn first_frame_auth_then_welcome() {
    let srv = start(&AUTH).await;
    let mut c = Client::connect(&srv.url(""), &[]).await.unwrap();
    // Nothing is served before auth: no welcome yet.
    assert!(c
        .try_next(std::time::Duration::from_millis(200))
        .await
        .is_none());
    c.send(json!({"type":"auth","token": token("carol", None, 60)}))
        .await;
    assert_eq!(c.expect("welcome").await["user"], "carol");
    c.join("r").await;
}

#[tokio::test]
async fn a_frame_other_than_auth_first_closes_1008() {
    let srv = start(&AUTH).await;
    let mut c = Client::connect(&srv.url(""), &[]).await.unwrap();
    c.send(json!({"type":"join","room":"r"})).await;
    assert_eq!(c.expect("error").await["code"], "UNAUTHORIZED");
    assert_eq!(c.expect_close().await, 1008);
}

#[tokio::test]
async fn invalid_auth_frame_closes_1008() {
    let srv = start(&AUTH).await;
    let mut c = Client::connect(&srv.url(""), &[]).await.unwrap();
    c.send(json!({"type":"auth","token": token("x", None, -5)}))
        .await;
    let e = c.expect("error").await;
    assert_eq!(e["code"], "UNAUTHORIZED");
    assert!(e["message"].as_str().unwrap().contains("expired"));
    assert_eq!(c.expect_close().await, 1008);
}

#[tokio::test]
async fn late_auth_closes_1008() {
    let srv = start(&["--jwt-secret", SECRET, "--auth-timeout", "300ms"]).await;
    let mut c = Client::connect(&srv.url(""), &[]).await.unwrap();
    assert_eq!(c.expect("error").await["code"], "UNAUTHORIZED");
    assert_eq!(c.expect_close().await, 1008);
    assert_eq!(srv.metric("auth_failures_total").await, 1.0);
}

#[tokio::test]
async fn token_rooms_limit_joins_with_forbidden() {
    let srv = start(&AUTH).await;
    let t = token("dave", Some(&["lobby", "team-*"]), 60);
    let (mut c, _) = srv.client(&format!("?token={t}")).await;
    c.join("lobby").await;
    c.join("team-blue").await;
    c.send(json!({"type":"join","room":"admin"})).await;
    assert_eq!(c.expect("error").await["code"], "FORBIDDEN");
    c.send(json!({"type":"join","room":"lobby2"})).await;
    assert_eq!(c.expect("error").await["code"], "FORBIDDEN");
}

#[tokio::test]
async fn origins_not_on_the_list_get_403() {
    let srv = start(&[
        "--allowed-origins",
        "https://good.example,https://also.example",
    ])
    .await;
    let (status, body) = refused(&srv.url(""), &[("Origin", "https://evil.example")]).await;
    assert_eq!(status, 403);
    assert!(body.contains("evil.example"));
    let mut c = Client::connect(&srv.url(""), &[("Origin", "https://also.example")])
        .await
        .unwrap();
    c.expect("welcome").await;
    // Non-browser clients send no Origin and are allowed.
    srv.client("").await;
}

#[tokio::test]
async fn without_a_secret_users_come_from_the_query_or_are_generated() {
    let srv = start(&[]).await;
    let (_, w) = srv.client("?user=zoe").await;
    assert_eq!(w["user"], "zoe");
    let (_, w1) = srv.client("").await;
    let (_, w2) = srv.client("").await;
    assert_ne!(w1["user"], w2["user"]);
    assert!(w1["user"].as_str().is_some_and(|u| !u.is_empty()));
}
