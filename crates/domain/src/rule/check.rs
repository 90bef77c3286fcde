//! The type check of a condition against the fields its place provides.
//!
//! A condition reads variables (`member`, `event`, `line`) whose shape Tessera knows: each
//! is the JSON the engine builds for it (`Shape`). The check walks the parsed expression
//! once, gives every node a type, and reports each node that cannot hold: a field the
//! variable does not have, an operator over types it does not take (`member.score > 'a'`),
//! a function the check does not know (the interpreter's functions whose results it can
//! type; `type()` and the optional values are left out), a condition that is not a
//! boolean. A node in
//! error gets the type `Dyn`, so one mistake is one message, not a cascade.
//!
//! `member.attributes` is the shop's own data: any key may be read and its type is only
//! known at evaluation (`Dyn`). Numbers of different kinds compare (`1 < 2.5`) but do not
//! mix in arithmetic, as in CEL.

use cel::common::ast::{operators, EntryExpr, Expr, IdedExpr, LiteralValue};
use std::fmt;

/// The static description of a variable's fields.
#[derive(Debug, PartialEq)]
pub struct Shape {
    pub name: &'static str,
    pub fields: &'static [(&'static str, Field)],
}

/// The type of one field of a shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field {
    Int,
    Text,
    /// Text, or null when absent (the member's tier before they have one).
    TextOrNull,
    List(&'static Field),
    /// A map with text keys and values of any type (`member.attributes`).
    AnyMap,
    Object(&'static Shape),
}

const LINE: Shape = Shape {
    name: "line",
    fields: &[
        ("sku", Field::Text),
        ("category", Field::Text),
        ("quantity", Field::Int),
        ("unit_price_minor", Field::Int),
        ("amount_minor", Field::Int),
        ("tags", Field::List(&Field::Text)),
    ],
};

const MEMBER_POINTS: Shape = Shape {
    name: "member.points",
    fields: &[("available", Field::Int), ("pending", Field::Int)],
};

const MEMBER: Shape = Shape {
    name: "member",
    fields: &[
        ("external_id", Field::Text),
        ("status", Field::Text),
        ("attributes", Field::AnyMap),
        ("created_at", Field::Text),
        ("points", Field::Object(&MEMBER_POINTS)),
        ("tier", Field::TextOrNull),
        ("score", Field::Int),
    ],
};

const REFUND_LINE: Shape = Shape {
    name: "event.refund.lines[]",
    fields: &[("sku", Field::Text), ("quantity", Field::Int)],
};

const REFUND: Shape = Shape {
    name: "event.refund",
    fields: &[
        ("lines", Field::List(&Field::Object(&REFUND_LINE))),
        ("amount_minor", Field::Int),
    ],
};

/// A line of an `order.paid` event as received (no computed amount).
const EVENT_LINE: Shape = Shape {
    name: "event.lines[]",
    fields: &[
        ("sku", Field::Text),
        ("category", Field::Text),
        ("quantity", Field::Int),
        ("unit_price_minor", Field::Int),
        ("tags", Field::List(&Field::Text)),
    ],
};

/// Every field any event type carries: a field the event at hand lacks makes the
/// condition not hold, as a missing attribute does.
const EVENT: Shape = Shape {
    name: "event",
    fields: &[
        ("type", Field::Text),
        ("id", Field::Text),
        ("member_id", Field::Text),
        ("occurred_at", Field::Text),
        ("order_id", Field::Text),
        ("lines", Field::List(&Field::Object(&EVENT_LINE))),
        ("shipping_minor", Field::Int),
        ("total_minor", Field::Int),
        ("refund", Field::Object(&REFUND)),
        ("activity", Field::Text),
    ],
};

/// What a member did lately, for the conditions of conversion offers
/// (`crate::offers::MemberStats`). `days_since_last_order` is null for a member who never
/// ordered, so a condition comparing it does not hold for them.
const STATS: Shape = Shape {
    name: "stats",
    fields: &[
        ("orders_30d", Field::Int),
        ("orders_90d", Field::Int),
        ("orders_365d", Field::Int),
        ("spend_30d_minor", Field::Int),
        ("spend_90d_minor", Field::Int),
        ("spend_365d_minor", Field::Int),
        ("days_since_last_order", Field::Int),
        ("plans", Field::List(&Field::Text)),
        ("plans_ever", Field::List(&Field::Text)),
    ],
};

/// The shape of a variable a condition may read, by name.
pub fn shape_of(variable: &str) -> Option<&'static Shape> {
    match variable {
        "member" => Some(&MEMBER),
        "stats" => Some(&STATS),
        "event" => Some(&EVENT),
        "line" => Some(&LINE),
        _ => None,
    }
}

/// A type the check gives an expression.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    Text,
    Bytes,
    Null,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Object(&'static Shape),
    /// Known only at evaluation, or already reported.
    Dyn,
}

impl Ty {
    fn of(field: &Field) -> Ty {
        match field {
            Field::Int => Ty::Int,
            Field::Text => Ty::Text,
            // Null compares with anything; what matters is the text.
            Field::TextOrNull => Ty::Text,
            Field::List(inner) => Ty::List(Box::new(Ty::of(inner))),
            Field::AnyMap => Ty::Map(Box::new(Ty::Text), Box::new(Ty::Dyn)),
            Field::Object(shape) => Ty::Object(shape),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    fn is_bool(&self) -> bool {
        matches!(self, Ty::Bool | Ty::Dyn)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::Int => f.write_str("int"),
            Ty::Uint => f.write_str("uint"),
            Ty::Double => f.write_str("double"),
            Ty::Text => f.write_str("string"),
            Ty::Bytes => f.write_str("bytes"),
            Ty::Null => f.write_str("null"),
            Ty::List(inner) => write!(f, "list({inner})"),
            Ty::Map(k, v) => write!(f, "map({k}, {v})"),
            Ty::Object(shape) => write!(f, "`{}`", shape.name),
            Ty::Dyn => f.write_str("dyn"),
        }
    }
}

/// One problem found in a condition: the id of the node it is about (for its position)
/// and what is wrong.
pub(super) struct Problem {
    pub node: u64,
    pub reason: String,
    /// A variable the place does not provide (refused even for versions saved before the
    /// type check), rather than a problem of types.
    pub unknown_variable: bool,
}

/// Checks `root` with the variables `allowed` in scope; every problem, in source order.
pub(super) fn check(root: &IdedExpr, allowed: &[&str]) -> Vec<Problem> {
    let mut checker = Checker {
        allowed,
        scope: Vec::new(),
        problems: Vec::new(),
    };
    let ty = checker.infer(root);
    if !ty.is_bool() {
        checker.report(
            root,
            format!("a condition must be true or false, and this one gives a {ty}"),
        );
    }
    checker.problems
}

struct Checker<'a> {
    allowed: &'a [&'a str],
    /// Comprehension variables (`x` in `lines.exists(x, ...)`), innermost last.
    scope: Vec<(String, Ty)>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, at: &IdedExpr, reason: String) -> Ty {
        self.problems.push(Problem {
            node: at.id,
            reason,
            unknown_variable: false,
        });
        Ty::Dyn
    }

    fn infer(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Expr::Literal(literal) => match literal {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::Text,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => self.ident(e, name),
            Expr::Select(select) => {
                let operand = self.infer(&select.operand);
                let ty = self.field(e, &select.operand, operand, &select.field);
                if select.test {
                    Ty::Bool
                } else {
                    ty
                }
            }
            Expr::List(list) => {
                let types: Vec<Ty> = list.elements.iter().map(|x| self.infer(x)).collect();
                Ty::List(Box::new(common(&types)))
            }
            Expr::Map(map) => {
                let mut keys = Vec::new();
                let mut values = Vec::new();
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        keys.push(self.infer(&entry.key));
                        values.push(self.infer(&entry.value));
                    }
                }
                Ty::Map(Box::new(common(&keys)), Box::new(common(&values)))
            }
            Expr::Struct(_) => self.report(e, "message literals are not supported".to_owned()),
            Expr::Comprehension(c) => {
                let range = self.infer(&c.iter_range);
                let (first, second) = match range {
                    Ty::List(elem) => (*elem.clone(), Some((Ty::Int, *elem))),
                    Ty::Map(k, v) => (*k.clone(), Some((*k, *v))),
                    Ty::Dyn => (Ty::Dyn, Some((Ty::Dyn, Ty::Dyn))),
                    other => {
                        self.report(
                            &c.iter_range,
                            format!("only a list or a map can be iterated over, not a {other}"),
                        );
                        (Ty::Dyn, None)
                    }
                };
                let depth = self.scope.len();
                match (&c.iter_var2, second) {
                    (Some(var2), Some((key, value))) => {
                        self.scope.push((c.iter_var.clone(), key));
                        self.scope.push((var2.clone(), value));
                    }
                    (Some(var2), None) => {
                        self.scope.push((c.iter_var.clone(), Ty::Dyn));
                        self.scope.push((var2.clone(), Ty::Dyn));
                    }
                    (None, _) => self.scope.push((c.iter_var.clone(), first)),
                }
                let accu = self.infer(&c.accu_init);
                self.scope.push((c.accu_var.clone(), accu));
                let cond = self.infer(&c.loop_cond);
                if !cond.is_bool() {
                    self.report(&c.loop_cond, format!("expected a bool, found a {cond}"));
                }
                let step = self.infer(&c.loop_step);
                // The accumulator holds what the step makes of it from here on.
                if let Some(last) = self.scope.last_mut() {
                    last.1 = step;
                }
                let result = self.infer(&c.result);
                self.scope.truncate(depth);
                result
            }
            Expr::Call(call) => {
                let target = call.target.as_deref();
                self.call(e, &call.func_name, target, &call.args)
            }
            Expr::Unspecified => self.report(e, "incomplete expression".to_owned()),
        }
    }

    fn ident(&mut self, e: &IdedExpr, name: &str) -> Ty {
        if let Some((_, ty)) = self.scope.iter().rev().find(|(n, _)| n == name) {
            return ty.clone();
        }
        if self.allowed.contains(&name) {
            return shape_of(name).map_or(Ty::Dyn, Ty::Object);
        }
        self.report(
            e,
            format!(
                "unknown variable `{name}`; available here: {}",
                self.allowed.join(", ")
            ),
        );
        if let Some(last) = self.problems.last_mut() {
            last.unknown_variable = true;
        }
        Ty::Dyn
    }

    fn field(&mut self, at: &IdedExpr, operand: &IdedExpr, ty: Ty, field: &str) -> Ty {
        match ty {
            Ty::Object(shape) => match shape.fields.iter().find(|(name, _)| *name == field) {
                Some((_, f)) => Ty::of(f),
                None => {
                    let names: Vec<&str> = shape.fields.iter().map(|(n, _)| *n).collect();
                    let hint = closest(field, &names)
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default();
                    self.report(
                        at,
                        format!(
                            "`{}` has no field `{field}`{hint}; its fields: {}",
                            shape.name,
                            names.join(", ")
                        ),
                    )
                }
            },
            Ty::Map(_, value) => *value,
            Ty::Dyn => Ty::Dyn,
            other => self.report(
                at,
                format!(
                    "`{}` is a {other}, which has no fields",
                    spelled(operand).unwrap_or_else(|| "this value".to_owned())
                ),
            ),
        }
    }

    fn call(
        &mut self,
        e: &IdedExpr,
        name: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Ty {
        let target_ty = target.map(|t| self.infer(t));
        let types: Vec<Ty> = args.iter().map(|a| self.infer(a)).collect();
        let arg = |i: usize| types.get(i).cloned().unwrap_or(Ty::Dyn);
        match name {
            operators::LOGICAL_AND | operators::LOGICAL_OR => {
                for (a, ty) in args.iter().zip(&types) {
                    if !ty.is_bool() {
                        let op = if name == operators::LOGICAL_AND {
                            "&&"
                        } else {
                            "||"
                        };
                        self.report(a, format!("`{op}` takes bools; this is a {ty}"));
                    }
                }
                Ty::Bool
            }
            operators::LOGICAL_NOT | operators::NOT_STRICTLY_FALSE => {
                if !arg(0).is_bool() {
                    self.report(e, format!("`!` takes a bool, not a {}", arg(0)));
                }
                Ty::Bool
            }
            operators::EQUALS | operators::NOT_EQUALS => {
                let (a, b) = (arg(0), arg(1));
                if !comparable(&a, &b) {
                    self.report(e, format!("a {a} is never equal to a {b}"));
                }
                Ty::Bool
            }
            operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS => {
                let (a, b) = (arg(0), arg(1));
                let ordered = match (&a, &b) {
                    (Ty::Dyn, _) | (_, Ty::Dyn) => true,
                    (x, y) if x.is_numeric() && y.is_numeric() => true,
                    (Ty::Text, Ty::Text) | (Ty::Bytes, Ty::Bytes) | (Ty::Bool, Ty::Bool) => true,
                    _ => false,
                };
                if !ordered {
                    self.report(e, format!("a {a} cannot be ordered against a {b}"));
                }
                Ty::Bool
            }
            operators::ADD
            | operators::SUBSTRACT
            | operators::MULTIPLY
            | operators::DIVIDE
            | operators::MODULO => self.arithmetic(e, name, arg(0), arg(1)),
            operators::NEGATE => match arg(0) {
                t @ (Ty::Int | Ty::Double | Ty::Dyn) => t,
                other => self.report(e, format!("`-` takes an int or a double, not a {other}")),
            },
            operators::CONDITIONAL => {
                if !arg(0).is_bool() {
                    self.report(
                        &args[0],
                        format!("the test of `? :` must be a bool, not a {}", arg(0)),
                    );
                }
                common(&[arg(1), arg(2)])
            }
            operators::INDEX => self.index(e, arg(0), &args[1], arg(1)),
            operators::IN => {
                match arg(1) {
                    Ty::List(elem) if !comparable(&arg(0), &elem) => {
                        self.report(e, format!("a {} is never in a list of {elem}", arg(0)));
                    }
                    Ty::Map(key, _) if !comparable(&arg(0), &key) => {
                        self.report(e, format!("a {} is never a key of a map of {key}", arg(0)));
                    }
                    Ty::List(_) | Ty::Map(..) | Ty::Dyn => {}
                    other => {
                        self.report(e, format!("`in` needs a list or a map, not a {other}"));
                    }
                }
                Ty::Bool
            }
            "size" => {
                let of = target_ty.unwrap_or_else(|| arg(0));
                match of {
                    Ty::Text | Ty::Bytes | Ty::List(_) | Ty::Map(..) | Ty::Dyn => Ty::Int,
                    other => self.report(
                        e,
                        format!("`size` takes a string, list or map, not a {other}"),
                    ),
                }
            }
            "contains" | "startsWith" | "endsWith" | "matches" => {
                let Some(of) = target_ty else {
                    return self
                        .report(e, format!("`{name}` is a method: write `text.{name}(...)`"));
                };
                for ty in [&of, &arg(0)] {
                    if !matches!(ty, Ty::Text | Ty::Dyn) {
                        self.report(e, format!("`{name}` works on strings, not on a {ty}"));
                        break;
                    }
                }
                if types.len() != 1 {
                    self.report(e, format!("`{name}` takes one argument"));
                }
                Ty::Bool
            }
            "int" | "uint" | "double" | "string" | "bool" | "bytes" | "dyn"
                if target.is_none() && types.len() == 1 =>
            {
                match name {
                    "int" => Ty::Int,
                    "uint" => Ty::Uint,
                    "double" => Ty::Double,
                    "string" => Ty::Text,
                    "bool" => Ty::Bool,
                    "bytes" => Ty::Bytes,
                    _ => arg(0),
                }
            }
            other => self.report(e, format!("unknown function `{other}`")),
        }
    }

    fn arithmetic(&mut self, e: &IdedExpr, op: &str, a: Ty, b: Ty) -> Ty {
        let symbol = op.trim_matches('_');
        match (a, b) {
            (Ty::Dyn, other) | (other, Ty::Dyn) => {
                if other.is_numeric() {
                    other
                } else {
                    Ty::Dyn
                }
            }
            (x, y) if x.is_numeric() && x == y => x,
            (Ty::Text, Ty::Text) if op == operators::ADD => Ty::Text,
            (Ty::Bytes, Ty::Bytes) if op == operators::ADD => Ty::Bytes,
            (Ty::List(x), Ty::List(y)) if op == operators::ADD => {
                Ty::List(Box::new(common(&[*x, *y])))
            }
            (x, y) if x.is_numeric() && y.is_numeric() => self.report(
                e,
                format!("`{symbol}` does not mix a {x} and a {y}; convert one (`double(x)`)"),
            ),
            (x, y) => self.report(e, format!("`{symbol}` cannot take a {x} and a {y}")),
        }
    }

    fn index(&mut self, e: &IdedExpr, of: Ty, key: &IdedExpr, key_ty: Ty) -> Ty {
        match of {
            Ty::List(elem) => match key_ty {
                Ty::Int | Ty::Uint | Ty::Dyn => *elem,
                other => self.report(e, format!("a list is indexed by an int, not a {other}")),
            },
            Ty::Map(_, value) => *value,
            Ty::Object(shape) => match &key.expr {
                Expr::Literal(LiteralValue::String(name)) => {
                    let name = name.to_string();
                    self.field(e, key, Ty::Object(shape), &name)
                }
                _ => Ty::Dyn,
            },
            Ty::Dyn => Ty::Dyn,
            other => self.report(e, format!("a {other} cannot be indexed")),
        }
    }
}

/// Whether two types can ever be equal. Null equals only null, but any field may be
/// compared with it (a missing tier).
fn comparable(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null) => true,
        (x, y) if x.is_numeric() && y.is_numeric() => true,
        (Ty::List(x), Ty::List(y)) => comparable(x, y),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => comparable(k1, k2) && comparable(v1, v2),
        (Ty::Object(_), Ty::Map(..)) | (Ty::Map(..), Ty::Object(_)) => true,
        (Ty::Object(x), Ty::Object(y)) => std::ptr::eq(*x, *y),
        (x, y) => x == y,
    }
}

/// The type of values of several types: theirs if they agree, else `Dyn`.
fn common(types: &[Ty]) -> Ty {
    let mut found: Option<&Ty> = None;
    for ty in types {
        match found {
            _ if *ty == Ty::Null => {}
            None => found = Some(ty),
            Some(f) if f == ty => {}
            Some(_) => return Ty::Dyn,
        }
    }
    found.cloned().unwrap_or(Ty::Dyn)
}

/// `member.tier` for an expression that spells a dotted name.
fn spelled(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(s) if !s.test => Some(format!("{}.{}", spelled(&s.operand)?, s.field)),
        _ => None,
    }
}

/// The name closest to `wrong` within two edits, for a "did you mean".
fn closest<'n>(wrong: &str, names: &[&'n str]) -> Option<&'n str> {
    names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(wrong, n), *n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}
