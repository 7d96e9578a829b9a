//! Compatibility levels and the check of a new schema against earlier versions.

use std::fmt;

use crate::schema::{Parsed, can_read};

/// A subject's (or the global) compatibility level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Level {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    /// Reads a level name as Confluent spells it (any case).
    pub(crate) fn parse(name: &str) -> Option<Level> {
        Some(match name.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => return None,
        })
    }

    /// The name Confluent uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether the check runs against every earlier version rather than the latest only.
    pub(crate) fn is_transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    /// Whether the new schema must read data written with the old one.
    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    /// Whether the old schema must read data written with the new one.
    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks `new` against each of `earlier` (version number and schema) in the directions
/// `level` asks for; returns why it is incompatible, empty if it is compatible.
///
/// The caller picks `earlier`: the latest version, or all of them for a transitive level.
pub(crate) fn check(level: Level, new: &Parsed, earlier: &[(u32, Parsed)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (version, old) in earlier {
        if level.backward() {
            problems.extend(can_read(old, new).into_iter().map(|p| {
                format!("{{errorType:'BACKWARD', oldSchemaVersion: {version}, description:'{p}'}}")
            }));
        }
        if level.forward() {
            problems.extend(can_read(new, old).into_iter().map(|p| {
                format!("{{errorType:'FORWARD', oldSchemaVersion: {version}, description:'{p}'}}")
            }));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("{{compatibility: '{level}'}}"));
    }
    problems
}
