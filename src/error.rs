//! The library's one error type. Each variant says what went wrong and where, so a user can fix
//! their input: the file (and line), the configuration key, the tensor. Only `main` prints it;
//! the server maps each variant to an HTTP status in one place (`serve::http::error`).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a file operation (`action`: "read", "create", ...).
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// A file that was read but is wrong as a whole: malformed, missing a part, inconsistent.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A problem on one line of a text file (1-based line number).
    #[error("{}:{line}: {what}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        what: String,
    },
    /// A setting (flag, TOML key, `config.json` field) with an unusable value.
    #[error("{key}: {why}")]
    Config { key: String, why: String },
    /// A tensor or array of the wrong size.
    #[error("{tensor}: expected {expected}, got {got}")]
    Shape {
        tensor: String,
        expected: String,
        got: String,
    },
    /// Something positio does not do (a model kind, a device, a combination of settings).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// An input that is not usable, not tied to a file or a setting (a request's text, a
    /// command's arguments taken together, a stopped training).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The OS refused to `action` ("read", "write", "create", ...) `path`.
    pub fn io(path: impl AsRef<Path>, action: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            action,
            source,
        }
    }
    pub fn file(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
    pub fn line(path: impl AsRef<Path>, line: usize, what: impl Into<String>) -> Self {
        Error::Parse {
            path: path.as_ref().to_path_buf(),
            line,
            what: what.into(),
        }
    }
    pub fn config(key: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            why: why.into(),
        }
    }
    pub fn shape(
        tensor: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Shape {
            tensor: tensor.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
    pub fn unsupported(what: impl Into<String>) -> Self {
        Error::Unsupported(what.into())
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_place() {
        let e = Error::line("data/train.tsv", 7, "no label");
        assert_eq!(e.to_string(), "data/train.tsv:7: no label");
        let e = Error::io(
            "run/x",
            "create",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert!(e.to_string().starts_with("run/x: cannot create: "));
        let e = Error::config("train.lr", "must be a positive number, got -1");
        assert_eq!(e.to_string(), "train.lr: must be a positive number, got -1");
        let e = Error::shape("input_ids", "[batch, 128]", "[2, 130]");
        assert_eq!(
            e.to_string(),
            "input_ids: expected [batch, 128], got [2, 130]"
        );
    }
}
