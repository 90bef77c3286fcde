//! Conditions in rules are CEL expressions (the `cel` crate). Each is compiled once, when
//! its programme version is loaded, and checked to use only the variables its place in the
//! programme provides.

mod check;

pub use check::{shape_of, Field, Shape};

use crate::limits::EXPRESSION_LEN_MAX;
use std::fmt;
use std::sync::Arc;

/// A compiled CEL condition and its source.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<cel::Program>,
    /// The variables the expression reads: only those are converted for an evaluation.
    variables: Vec<String>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// A place in a condition's source: 1-based line and column, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub line: u32,
    pub column: u32,
}

impl Place {
    /// The place of a byte offset of `source` (the parser's offsets are in bytes).
    fn of_offset(source: &str, offset: usize) -> Place {
        let (line, column) = crate::programme::line_column(source, offset);
        Place { line, column }
    }
}

/// Why a condition is refused, and where in its source (`None`: the whole of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionProblem {
    pub at: Option<Place>,
    pub reason: String,
}

impl fmt::Display for ConditionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "at {}:{}: {}", at.line, at.column, self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Why a condition could not be evaluated for a given input (a missing attribute, a type
/// mismatch). The caller decides what that means; rules treat it as "does not apply".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(String);

impl Condition {
    /// Compiles `source` and type-checks it against the variables `allowed` at this place
    /// of the programme (`member`, `event`, `line`): an unknown variable, an unknown field,
    /// an operator over types it does not take or a result that is not a boolean is
    /// refused. Every type problem is answered, each with its place in `source`; a syntax
    /// error is answered alone (the parser stops at it).
    pub fn compile(source: &str, allowed: &[&str]) -> Result<Self, Vec<ConditionProblem>> {
        Self::compile_with(source, allowed, true)
    }

    /// `compile`, with the type check only when `type_check`; without it, only unknown
    /// variables are refused (how versions saved before the check are loaded).
    pub fn compile_with(
        source: &str,
        allowed: &[&str],
        type_check: bool,
    ) -> Result<Self, Vec<ConditionProblem>> {
        let whole = |reason: String| vec![ConditionProblem { at: None, reason }];
        if source.len() > EXPRESSION_LEN_MAX {
            return Err(whole(format!(
                "expression is longer than {EXPRESSION_LEN_MAX} bytes"
            )));
        }
        if source.trim().is_empty() {
            return Err(whole("expression is empty".to_owned()));
        }
        // The parser of the `cel` crate is not proven panic-free on every input; a panic on
        // a user's expression must become a refusal, not a crash of the server.
        let compiled = std::panic::catch_unwind(|| cel::Program::compile(source))
            .map_err(|_| whole("expression could not be parsed".to_owned()))?;
        let program = compiled.map_err(|errors| {
            errors
                .errors
                .iter()
                .take(1)
                .map(|e| ConditionProblem {
                    at: Some(Place {
                        line: u32::try_from(e.pos.0.max(1)).unwrap_or(1),
                        column: u32::try_from(e.pos.1.max(1)).unwrap_or(1),
                    }),
                    reason: format!("not a valid CEL expression: {}", e.msg),
                })
                .collect::<Vec<_>>()
        })?;
        let problems: Vec<check::Problem> = check::check(program.expression(), allowed)
            .into_iter()
            .filter(|p| type_check || p.unknown_variable)
            .collect();
        if !problems.is_empty() {
            return Err(problems
                .into_iter()
                .map(|p| ConditionProblem {
                    at: program
                        .source_info()
                        .offset_for(p.node)
                        .map(|(start, _)| Place::of_offset(source, start as usize)),
                    reason: p.reason,
                })
                .collect());
        }
        let mut variables: Vec<String> = program
            .references()
            .variables()
            .into_iter()
            .map(str::to_owned)
            .collect();
        variables.sort_unstable();
        variables.dedup();
        Ok(Self {
            source: source.to_owned(),
            program: Arc::new(program),
            variables,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads `variable`.
    pub fn uses(&self, variable: &str) -> bool {
        self.variables.iter().any(|v| v == variable)
    }

    /// Evaluates the condition over named JSON values; anything but `true` is `false`.
    pub fn evaluate(&self, variables: &[(&str, &serde_json::Value)]) -> Result<bool, EvalError> {
        // The standard library's environment is built once per process: building it is
        // most of the cost of a context, and every evaluation needs one.
        static STDLIB: std::sync::OnceLock<Arc<cel::Env>> = std::sync::OnceLock::new();
        let env = STDLIB.get_or_init(|| Arc::new(cel::Env::stdlib())).clone();
        let mut context = cel::Context::with_env(env);
        for (name, value) in variables {
            if !self.uses(name) {
                continue;
            }
            let value = cel::to_value(*value).map_err(|e| EvalError(e.to_string()))?;
            context.add_variable_from_value(*name, value);
        }
        match self.program.execute(&context) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(EvalError(format!(
                "condition gave {other:?}, not a boolean"
            ))),
            Err(e) => Err(EvalError(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compile_and_evaluate() {
        let c = Condition::compile(
            "member.attributes.city == 'Beijing' && member.score >= 1000",
            &["member"],
        )
        .unwrap();
        let yes = json!({"attributes": {"city": "Beijing"}, "score": 1200});
        let no = json!({"attributes": {"city": "Shanghai"}, "score": 1200});
        assert_eq!(c.evaluate(&[("member", &yes)]), Ok(true));
        assert_eq!(c.evaluate(&[("member", &no)]), Ok(false));
        assert!(c.evaluate(&[("member", &json!({}))]).is_err());
    }

    #[test]
    fn compile_refusals() {
        let cases = [
            ("member.score >", "not a valid CEL expression"),
            ("order.total > 5", "unknown variable `order`"),
            ("   ", "expression is empty"),
        ];
        for (source, expected) in cases {
            let err = Condition::compile(source, &["member", "event"]).unwrap_err();
            assert!(err[0].reason.contains(expected), "{source:?}: {err:?}");
        }
    }
}
