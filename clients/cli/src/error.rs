//! How a command ends: its [`Outcome`] when it ran, an [`Error`] when it could not, and the
//! exit status of each.

use tonic::Code;

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked: exit 0.
    Success,
    /// The command went on past failures (named on stderr as they happened): exit 1.
    SomeFailed,
    /// Stopped by the user (Ctrl-C) before it finished: exit 130.
    Interrupted,
}

impl Outcome {
    pub fn exit_status(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::SomeFailed => 1,
            Outcome::Interrupted => 130,
        }
    }
}

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--addr` is not a URL.
    #[error("invalid --addr {addr}: {reason}")]
    InvalidAddr { addr: String, reason: String },
    /// No connection to the daemon, or it went away.
    #[error("cannot reach timbred at {addr}: {reason} (is it running? start it with `timbred serve`)")]
    Unreachable { addr: String, reason: String },
    /// The TLS handshake failed on the daemon's certificate.
    #[error(
        "cannot trust timbred at {addr}: {reason} (give the CA certificate that signed the daemon's certificate \
         with --ca-cert FILE)"
    )]
    Untrusted { addr: String, reason: String },
    /// The daemon wants a bearer token, or not the one given.
    #[error(
        "timbred at {addr} refused the call: {reason} (pass a token it accepts with --token TOKEN or the \
         TIMBRE_TOKEN environment variable)"
    )]
    Unauthenticated { addr: String, reason: String },
    /// The daemon answered with an error.
    #[error("{}", status_line(.0))]
    Status(Box<tonic::Status>),
    /// The daemon's answer broke the contract, for example a scan stream that ended without
    /// its final message.
    #[error("{0}")]
    Incomplete(String),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// Something on this side, such as a path that cannot be made absolute.
    #[error("{0}")]
    Local(String),
    /// An input named on the command line cannot be used, for example an example of
    /// `recommend` that is neither a library track nor a readable file. The text names it.
    #[error("{0}")]
    Input(String),
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Status(Box::new(status))
    }
}

impl Error {
    /// Exit status: 1 when the daemon refused the request, 2 when it could not be asked;
    /// output to a closed pipe is success (`timbre tracks | head`).
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Error::Status(status) if !ends_the_command(status.code()) => 1,
            Error::Incomplete(_) | Error::Input(_) => 1,
            Error::Status(_) | Error::InvalidAddr { .. } | Error::Unreachable { .. } => 2,
            Error::Unauthenticated { .. } | Error::Untrusted { .. } => 2,
            Error::Output(_) | Error::Local(_) => 2,
        }
    }

    /// Whether to print anything: a closed pipe is not worth a message.
    pub fn is_silent(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Names the daemon's address when the daemon went away mid-call (UNAVAILABLE made by
    /// the client's transport, which keeps the cause as the status's source), so that case
    /// reads like a refused connection, and when it wants a token (UNAUTHENTICATED), with how
    /// to give one. An UNAVAILABLE the daemon sent itself (its vector index is down, it is
    /// shutting down) says what the daemon said.
    pub fn with_addr(self, addr: &str) -> Error {
        match self {
            Error::Status(status)
                if status.code() == Code::Unavailable && std::error::Error::source(&*status).is_some() =>
            {
                Error::Unreachable { addr: addr.to_string(), reason: status_line(&status) }
            }
            Error::Status(status) if status.code() == Code::Unauthenticated => {
                Error::Unauthenticated { addr: addr.to_string(), reason: status_line(&status) }
            }
            other => other,
        }
    }
}

/// Whether a status means every further call would fail the same way (the daemon went away,
/// or refuses the token), so a command that goes on past failed items stops instead.
pub fn ends_the_command(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Unauthenticated)
}

/// `CODE: message`, for example `NOT_FOUND: no track with id 7`.
pub fn status_line(status: &tonic::Status) -> String {
    format!("{}: {}", code_name(status.code()), status_message(status))
}

/// The status's message, or what its code means when the message is empty.
pub fn status_message(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        status.code().description().to_string()
    } else {
        status.message().to_string()
    }
}

/// The canonical gRPC name of a status code, as grpcurl and the gRPC docs spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its sources, joined by ": ", skipping a source that repeats its parent.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_print_code_and_message() {
        let error = Error::from(tonic::Status::not_found("no track with id 7"));
        assert_eq!(error.to_string(), "NOT_FOUND: no track with id 7");
        assert_eq!(error.exit_status(), 1);

        let empty = Error::from(tonic::Status::new(Code::Internal, ""));
        assert_eq!(empty.to_string(), format!("INTERNAL: {}", Code::Internal.description()));
    }

    #[test]
    fn an_unreachable_daemon_is_exit_2_and_says_how_to_start_it() {
        let error = Error::Unreachable { addr: "http://127.0.0.1:9".into(), reason: "connection refused".into() };
        let text = error.to_string();
        assert!(text.starts_with("cannot reach timbred at http://127.0.0.1:9: connection refused"), "{text}");
        assert!(text.contains("timbred serve"), "{text}");
        assert_eq!(error.exit_status(), 2);

        // A daemon that goes away mid-call (the client's transport makes the status) reads the same.
        #[derive(Debug)]
        struct Transport(tonic::Status);
        impl std::fmt::Display for Transport {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport")
            }
        }
        impl std::error::Error for Transport {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let transport = tonic::Status::from_error(Box::new(Transport(tonic::Status::unavailable("transport error"))));
        let gone = Error::from(transport).with_addr("http://h:1");
        assert!(matches!(gone, Error::Unreachable { .. }), "{gone:?}");
        assert!(gone.to_string().starts_with("cannot reach timbred at http://h:1: UNAVAILABLE: transport error"));
        assert_eq!(gone.exit_status(), 2);
        // An UNAVAILABLE the daemon sent says what the daemon said.
        let said = Error::from(tonic::Status::unavailable("the vector index is unavailable")).with_addr("a");
        assert!(matches!(said, Error::Status(_)), "{said:?}");
        assert_eq!(said.to_string(), "UNAVAILABLE: the vector index is unavailable");
        // Other statuses are left alone.
        assert!(matches!(Error::from(tonic::Status::internal("x")).with_addr("a"), Error::Status(_)));
    }

    #[test]
    fn a_refused_token_says_how_to_give_one() {
        let status = tonic::Status::unauthenticated("this daemon requires a bearer token");
        let error = Error::from(status).with_addr("https://h:1");
        let text = error.to_string();
        assert!(text.starts_with("timbred at https://h:1 refused the call: UNAUTHENTICATED: this daemon"), "{text}");
        assert!(text.contains("--token") && text.contains("TIMBRE_TOKEN"), "{text}");
        assert_eq!(error.exit_status(), 2);
        assert!(ends_the_command(Code::Unauthenticated) && !ends_the_command(Code::NotFound));
    }

    #[test]
    fn a_closed_pipe_is_a_silent_success() {
        let error = Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(error.is_silent());
        assert_eq!(error.exit_status(), 0);
        let full = Error::from(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(!full.is_silent());
        assert_eq!(full.exit_status(), 2);
    }

    #[test]
    fn unusable_inputs_are_exit_1() {
        let error = Error::Input("song.flac: no such file".into());
        assert_eq!(error.to_string(), "song.flac: no such file");
        assert_eq!(error.exit_status(), 1);
    }

    #[test]
    fn outcomes_map_to_exit_codes() {
        assert_eq!(Outcome::Success.exit_status(), 0);
        assert_eq!(Outcome::SomeFailed.exit_status(), 1);
        assert_eq!(Outcome::Interrupted.exit_status(), 130);
    }

    #[test]
    fn chains_skip_repeated_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(chain(&error), "tcp connect error: connection refused");
    }
}
