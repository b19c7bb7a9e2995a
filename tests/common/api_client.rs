//! Talking to the REST API in tests: requests with a bearer credential, answers checked
//! for their status and envelope, tokens from the CLI, JWTs signed with the test key.

use serde_json::Value;

use super::{cli, http, HttpAnswer, Server, TestDb};

pub const JWT_KEY: &str = "0123456789abcdef0123456789abcdef-control-plane";

/// A request to the API with a bearer credential (or none).
pub fn call(
    s: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> HttpAnswer {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut headers: Vec<&str> = Vec::new();
    if let Some(a) = &auth {
        headers.push(a);
    }
    let text = body.map(|b| b.to_string());
    if text.is_some() {
        headers.push("Content-Type: application/json");
    }
    http(
        s.http,
        method,
        path,
        &headers,
        text.as_deref().map(str::as_bytes),
    )
}

pub fn ok(a: HttpAnswer, status: u16) -> Value {
    assert_eq!(a.status, status, "{}", a.body);
    if a.body.is_empty() {
        Value::Null
    } else {
        a.json()
    }
}

pub fn error_code(a: &HttpAnswer) -> String {
    a.json()["error"]["code"].as_str().unwrap_or("").to_string()
}

/// `tokens create` prints the token alone on its last line.
pub fn token(db: &TestDb, name: &str, scope: &str) -> String {
    let out = cli(
        &db.url,
        &["tokens", "create", "--name", name, "--scope", scope],
    );
    out.lines().last().expect("a token line").trim().to_string()
}

pub fn jwt(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_KEY.as_bytes()),
    )
    .expect("a JWT")
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub const ENV: [(&str, &str); 5] = [
    ("EDGE_API_JWT_HS256_SECRET", JWT_KEY),
    ("EDGE_API_JWT_ISSUER", "control-plane"),
    ("EDGE_API_JWT_AUDIENCE", "edge"),
    ("EDGE_API_MAX_BODY_BYTES", "4096"),
    ("EDGE_API_COA_TIMEOUT_MS", "300"),
];

pub fn server(db: &TestDb) -> Server {
    Server::start_with(&db.url, &ENV)
}
