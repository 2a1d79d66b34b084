//! JWT (HS256) authentication and per-user room permissions.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The claims protocol v1 reads from a token.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Room names or `prefix*` patterns the user may join; absent = any room.
    #[serde(default)]
    pub rooms: Option<Vec<String>>,
    pub exp: u64,
}

/// Why a token was refused; the text goes into the 401 body or the close reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Verifies tokens against the server's secret.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier(HS256)")
    }
}

impl Verifier {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // `exp` is enforced to the second: a benchmark should see expiry exactly.
        validation.leeway = 0;
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = decode::<Claims>(token.trim(), &self.key, &self.validation).map_err(|e| {
            AuthError(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired".to_owned(),
                ErrorKind::InvalidSignature => "invalid token signature".to_owned(),
                ErrorKind::InvalidAlgorithm => "token algorithm must be HS256".to_owned(),
                ErrorKind::MissingRequiredClaim(c) => format!("token lacks the `{c}` claim"),
                _ => format!("invalid token: {e}"),
            })
        })?;
        if data.claims.sub.is_empty() {
            return Err(AuthError("token `sub` is empty".into()));
        }
        Ok(data.claims)
    }
}

/// Room patterns a user may join; `None` means any room.
#[derive(Debug, Clone, Default)]
pub struct RoomAcl(Option<Box<[Box<str>]>>);

impl RoomAcl {
    pub fn any() -> Self {
        Self(None)
    }

    pub fn from_claims(rooms: Option<Vec<String>>) -> Self {
        Self(rooms.map(|r| r.into_iter().map(String::into_boxed_str).collect()))
    }

    pub fn allows(&self, room: &str) -> bool {
        let Some(patterns) = &self.0 else {
            return true;
        };
        patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => room.starts_with(prefix),
            None => room == p.as_ref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde::Serialize;

    #[derive(Serialize)]
    struct C<'a> {
        sub: &'a str,
        exp: u64,
        rooms: Vec<&'a str>,
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(secret: &str, exp: u64) -> String {
        let c = C {
            sub: "alice",
            exp,
            rooms: vec!["lobby", "team-*"],
        };
        encode(
            &Header::default(),
            &c,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn verifies_and_explains_failures() {
        let v = Verifier::new("s3cret");
        let claims = v.verify(&token("s3cret", now() + 60)).unwrap();
        assert_eq!(claims.sub, "alice");
        let acl = RoomAcl::from_claims(claims.rooms);
        assert!(acl.allows("lobby") && acl.allows("team-a") && !acl.allows("lobby2"));
        assert!(v
            .verify(&token("s3cret", now() - 10))
            .unwrap_err()
            .0
            .contains("expired"));
        assert!(v
            .verify(&token("other", now() + 60))
            .unwrap_err()
            .0
            .contains("signature"));
        assert!(v.verify("garbage").is_err());
        assert!(RoomAcl::any().allows("anything"));
    }
}
