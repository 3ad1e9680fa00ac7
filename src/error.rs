//! Errors as one line of text, for reports, probe results and logs.

use std::error::Error;

/// `e` followed by its sources, `a: b: c`: how library code turns an error into text (a
/// status message, a report row, a log line), since plinth's error messages never repeat
/// their source. A source whose text is already part of the line is skipped (errors from
/// other crates, e.g. HTTP clients, often repeat their cause in their own message).
pub fn chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let part = src.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = src.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    #[test]
    fn sources_are_appended_and_repeats_skipped() {
        let root = Layer("connection refused", None);
        assert_eq!(chain(&root), "connection refused");
        let e = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect): connection refused",
                Some(Box::new(Layer("connection refused", None))),
            ))),
        );
        assert_eq!(
            chain(&e),
            "error sending request: client error (Connect): connection refused"
        );
    }
}
