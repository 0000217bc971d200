//! Bearer tokens: the tokens file, and the one interceptor that checks every call of the
//! `timbre.v1.Timbre` service and of reflection (`grpc.health.v1` stays open, so supervisors
//! and load balancers can probe the daemon without a secret).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Why a tokens file cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("tokens file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "tokens file {}: readable by group or others (mode {mode:04o}); make it private to the daemon's user with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("tokens file {}: no tokens in it (one token per line; blank lines and lines starting with # are skipped)", path.display())]
    Empty { path: PathBuf },
    #[error("tokens file {} line {line}: a token is printable ASCII without spaces (it travels in an HTTP header)", path.display())]
    BadToken { path: PathBuf, line: usize },
}

/// The accepted tokens, kept only as SHA-256 digests: a presented token is hashed and compared
/// with every digest in constant time, so neither its length nor how much of it matched, nor
/// which token it was, shows in the time an answer takes.
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl Tokens {
    /// Reads `path`: one token per line; blank lines and lines starting with `#` are skipped.
    /// Like ssh with a private key, refuses a file that group or others may read or write.
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let read = |source| TokensError::Read { path: path.to_path_buf(), source };
        let mut file = std::fs::File::open(path).map_err(read)?;
        let mode = file.metadata().map_err(read)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(TokensError::TooOpen { path: path.to_path_buf(), mode: mode & 0o7777 });
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read)?;
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let token = line.trim();
            if token.is_empty() || token.starts_with('#') {
                continue;
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TokensError::BadToken { path: path.to_path_buf(), line: i + 1 });
            }
            digests.push(digest(token.as_bytes()));
        }
        if digests.is_empty() {
            return Err(TokensError::Empty { path: path.to_path_buf() });
        }
        Ok(Tokens { digests })
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `token` is one of the tokens. Every digest is compared, whatever matches.
    pub fn accepts(&self, token: &[u8]) -> bool {
        let presented = digest(token);
        let matched = self.digests.iter().fold(subtle::Choice::from(0), |any, d| any | d.ct_eq(&presented));
        matched.into()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The interceptor: with tokens, a call passes only with `authorization: Bearer <token>`
/// metadata naming one of them; without tokens every call passes.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Option<Arc<Tokens>>,
}

impl Authenticator {
    pub fn new(tokens: Option<Arc<Tokens>>) -> Self {
        Authenticator { tokens }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(request);
        };
        let Some(header) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "this daemon requires a bearer token: send `authorization: Bearer <token>` metadata",
            ));
        };
        let token = header.as_bytes().split_at_checked(7).and_then(|(scheme, token)| {
            // The scheme is case-insensitive (RFC 6750 by way of RFC 7235).
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(token.trim_ascii())
        });
        match token {
            Some(token) if tokens.accepts(token) => Ok(request),
            Some(_) => Err(Status::unauthenticated("the bearer token is not one this daemon accepts")),
            None => Err(Status::unauthenticated("the authorization metadata is not `Bearer <token>`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    fn tokens_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("tokens");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_tokens_file_is_refused_when_others_may_read_it_or_it_holds_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = tokens_file(dir.path(), "s3cret-token\n", 0o644);
        let error = Tokens::load(&path).err().expect("group and others may read it").to_string();
        assert!(error.contains(&path.display().to_string()) && error.contains("0644"), "{error}");
        assert!(error.contains("chmod 600"), "{error}");
        assert!(Tokens::load(&tokens_file(dir.path(), "s3cret-token\n", 0o640)).is_err(), "group may read it");

        let path = tokens_file(dir.path(), "# nothing yet\n\n", 0o600);
        let error = Tokens::load(&path).err().expect("no tokens").to_string();
        assert!(error.contains(&path.display().to_string()) && error.contains("no tokens"), "{error}");

        let path = tokens_file(dir.path(), "good\nnot good\n", 0o600);
        let error = Tokens::load(&path).err().expect("a space").to_string();
        assert!(error.contains("line 2") && !error.contains("not good"), "the token is not printed: {error}");

        let missing = dir.path().join("missing");
        assert!(Tokens::load(&missing).err().expect("missing").to_string().contains(&missing.display().to_string()));
    }

    #[test]
    fn every_token_in_the_file_is_accepted_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = Tokens::load(&tokens_file(dir.path(), "# players\n  alpha-1 \n\nbeta-2\n", 0o600)).expect("loads");
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts(b"alpha-1") && tokens.accepts(b"beta-2"));
        for wrong in [&b""[..], b"alpha", b"alpha-12", b"beta-2 ", b"# players"] {
            assert!(!tokens.accepts(wrong), "{:?}", String::from_utf8_lossy(wrong));
        }
    }

    #[test]
    fn the_interceptor_wants_a_bearer_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = Tokens::load(&tokens_file(dir.path(), "alpha-1\n", 0o600)).expect("loads");
        let mut auth = Authenticator::new(Some(Arc::new(tokens)));
        let call = |auth: &mut Authenticator, header: Option<&str>| {
            let mut request = Request::new(());
            if let Some(value) = header {
                request.metadata_mut().insert("authorization", value.parse().expect("ascii"));
            }
            auth.call(request).map(|_| ()).map_err(|status| status.code())
        };
        assert_eq!(call(&mut auth, Some("Bearer alpha-1")), Ok(()));
        assert_eq!(call(&mut auth, Some("bearer alpha-1")), Ok(()));
        for refused in [None, Some("Bearer alpha-2"), Some("alpha-1"), Some("Basic alpha-1"), Some("Bearer ")] {
            assert_eq!(call(&mut auth, refused), Err(tonic::Code::Unauthenticated), "{refused:?}");
        }
        assert_eq!(call(&mut Authenticator::new(None), None), Ok(()), "no tokens: open");
    }
}
