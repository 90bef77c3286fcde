//! Conditions in rules are CEL expressions (the `cel` crate). Each is compiled once, when
//! its programme version is loaded, and checked to use only the variables its place in the
//! programme provides.

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

/// Why a condition could not be evaluated for a given input (a missing attribute, a type
/// mismatch). The caller decides what that means; rules treat it as "does not apply".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(String);

impl Condition {
    /// Compiles `source`, refusing unknown variables: `allowed` names the variables this
    /// place of the programme provides (`member`, `event`, `line`).
    pub fn compile(source: &str, allowed: &[&str]) -> Result<Self, String> {
        if source.len() > EXPRESSION_LEN_MAX {
            return Err(format!(
                "expression is longer than {EXPRESSION_LEN_MAX} bytes"
            ));
        }
        if source.trim().is_empty() {
            return Err("expression is empty".to_owned());
        }
        // The parser of the `cel` crate is not proven panic-free on every input; a panic on
        // a user's expression must become a refusal, not a crash of the server.
        let compiled = std::panic::catch_unwind(|| cel::Program::compile(source))
            .map_err(|_| "expression could not be parsed".to_owned())?;
        let program = compiled.map_err(|errors| {
            let first = errors.to_string();
            format!(
                "not a valid CEL expression: {}",
                first.lines().next().unwrap_or("syntax error")
            )
        })?;
        let references = program.references();
        let mut unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|v| !allowed.contains(v))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if let Some(name) = unknown.first() {
            return Err(format!(
                "unknown variable `{name}`; available here: {}",
                allowed.join(", ")
            ));
        }
        let mut variables: Vec<String> = references
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
            assert!(err.contains(expected), "{source:?}: {err}");
        }
    }
}
