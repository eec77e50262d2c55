//! The structure a parsed answer takes: the value every answer form (expressions, relations,
//! tuples, sets, matrices, text) is compared as.

use crate::expr::Expr;

/// A structured answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A single expression.
    Expr(Expr),
    /// `lhs = rhs`; `lhs_is_name` when the left side only names the answer (`x`, `f(x)`, `a_n`).
    Equation {
        /// Left side.
        lhs: Expr,
        /// Right side.
        rhs: Expr,
        /// Whether the left side is just a name.
        lhs_is_name: bool,
        /// The left side as written (canonical text).
        lhs_text: String,
    },
    /// A relation that is compared as text (`x \ne 3`, multi-variable inequalities).
    Relation(String),
    /// A bracketed ordered list: tuple, vector or interval (`(1,2]`).
    Seq {
        /// Opening bracket.
        open: char,
        /// Closing bracket.
        close: char,
        /// Items in order.
        items: Vec<Answer>,
    },
    /// An unordered collection (`\{1,2\}` or `1, 2` as multiple answers).
    Set(Vec<Answer>),
    /// A union of intervals and sets.
    Union(Vec<Answer>),
    /// A matrix (rows of cells).
    Matrix(Vec<Vec<Answer>>),
    /// A text answer, lower-cased with spaces removed.
    Text(String),
    /// A multiple-choice letter.
    Choice(char),
}
