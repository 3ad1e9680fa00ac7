//! Errors of the config module: I/O, YAML syntax (with `file:line:col`) and the list of
//! every field that failed validation.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

/// One invalid field: which field (or flag), the value found, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Full field path (`ClusterConfiguration.networking.podSubnet`) or flag (`--service-cidr`).
    pub field: String,
    /// The offending value as written (empty when the value is missing).
    pub value: String,
    /// What is allowed instead, or how to fix it.
    pub allowed: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        allowed: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            value: value.into(),
            allowed: allowed.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: invalid value {:?}: {}",
            self.field, self.value, self.allowed
        )
    }
}

/// Why one value is invalid, from the pure value checks ([`super::validate`],
/// [`super::duration`]): what is allowed, or what is wrong. The caller adds the field and the
/// value (a [`FieldError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ValueError {
    /// What is allowed, or what is wrong.
    pub reason: String,
}

impl ValueError {
    /// A value error saying `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        ValueError {
            reason: reason.into(),
        }
    }
}

impl From<ValueError> for String {
    fn from(e: ValueError) -> String {
        e.reason
    }
}

/// Everything that can go wrong turning a config file and flags into a [`super::ClusterSpec`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config file {path}")]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{source_name}:{line}:{column}: {message}")]
    Syntax {
        /// File name (or other source label).
        source_name: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// The parser's message.
        message: String,
    },
    /// The file holds no YAML document at all (empty, or only comments).
    #[error(
        "no documents in {source_name}: expected InitConfiguration/ClusterConfiguration \
         (kubeadm.k8s.io/v1beta3 or v1beta4) and optionally PlinthConfiguration \
         (plinth.io/v1alpha1); the file is empty or holds only comments (to use only the \
         defaults, leave out --config)"
    )]
    NoDocuments {
        /// File name (or other source label).
        source_name: String,
    },
    /// The file is refused before it is read: it would expand beyond sane limits (YAML
    /// aliases), nest too deep, or hold too many documents.
    #[error("{source_name}: refusing to read the file: {reason}")]
    TooLarge {
        /// File name (or other source label).
        source_name: String,
        /// What limit it breaks, in operator terms.
        reason: String,
    },
    /// One or more fields are invalid; every problem found is listed.
    #[error("{}", FieldErrors(.errors))]
    Invalid {
        /// File name (or other source label) the config came from.
        source_name: String,
        /// Every invalid field, in the order found.
        errors: Vec<FieldError>,
    },
}

impl ConfigError {
    /// The field errors, if this is a validation error (empty otherwise).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ConfigError::Invalid { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// Displays field errors one per line.
struct FieldErrors<'a>(&'a [FieldError]);

impl fmt::Display for FieldErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects field errors while a config is read and validated.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    list: Vec<FieldError>,
    /// The source text of numbers a `serde_json::Value` cannot hold exactly (floats, and
    /// integers beyond 64 bits), by full field path, so messages quote them as written.
    written: HashMap<String, String>,
}

impl Errors {
    /// Remembers the source text of the numbers at these field paths.
    pub(crate) fn set_written(&mut self, written: HashMap<String, String>) {
        self.written = written;
    }

    /// `value` (the value of `field`) as written in the file when known, else rendered.
    pub(crate) fn written(&self, field: &str, value: &Value) -> String {
        match (value, self.written.get(field)) {
            (Value::Number(_), Some(text)) => text.clone(),
            _ => render(value),
        }
    }

    /// Records one error.
    pub(crate) fn push(
        &mut self,
        field: impl Into<String>,
        value: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.list.push(FieldError::new(field, value, allowed));
    }

    /// How many errors were recorded.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// True when nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The recorded errors.
    pub(crate) fn into_vec(self) -> Vec<FieldError> {
        self.list
    }
}

/// A short, single-line rendering of a YAML value for error messages.
pub(crate) fn render(value: &Value) -> String {
    let s = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    const MAX: usize = 80;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_one_error_per_line() {
        let err = ConfigError::Invalid {
            source_name: "x.yaml".into(),
            errors: vec![
                FieldError::new("A.b", "1", "a string"),
                FieldError::new("--service-cidr", "x", "a CIDR"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "A.b: invalid value \"1\": a string\n--service-cidr: invalid value \"x\": a CIDR"
        );
        assert_eq!(err.field_errors().len(), 2);
    }

    #[test]
    fn syntax_error_names_position() {
        let err = ConfigError::Syntax {
            source_name: "c.yaml".into(),
            line: 3,
            column: 7,
            message: "bad".into(),
        };
        assert_eq!(err.to_string(), "c.yaml:3:7: bad");
    }
}
