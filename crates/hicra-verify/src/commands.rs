//! The LaTeX command vocabulary of the expression parser: functions, decorations that
//! rename a symbol, and commands that never start an operand.

use crate::expr::Func;

/// Commands that never start an operand.
pub const NON_OPERANDS: &[&str] = &[
    "le",
    "ge",
    "ne",
    "approx",
    "in",
    "notin",
    "cup",
    "cap",
    "pm",
    "mp",
    "cdot",
    "times",
    "div",
    "to",
    "rightarrow",
    "Rightarrow",
    "implies",
    "iff",
    "rfloor",
    "rceil",
    "rangle",
    "sim",
    "simeq",
    "equiv",
    "prime",
    "setminus",
    "subset",
    "subseteq",
    "land",
    "lor",
    "wedge",
    "vee",
    "text",
    "begin",
    "end",
    "over",
    "choose",
    "mod",
    "pmod",
    "bmod",
    "forall",
    "exists",
    "quad",
    "neq",
    "leq",
    "geq",
];

/// Decorations that rename a symbol (`\bar{x}` is its own variable).
pub const DECORATIONS: &[&str] = &[
    "overline",
    "bar",
    "hat",
    "vec",
    "dot",
    "ddot",
    "tilde",
    "widehat",
    "widetilde",
    "underline",
    "mathbb",
    "mathcal",
    "mathfrak",
    "mathscr",
    "overrightarrow",
];

/// Maps a function word to its [`Func`].
pub fn function_of(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" | "tg" => Func::Tan,
        "sec" => Func::Sec,
        "csc" | "cosec" => Func::Csc,
        "cot" | "ctg" => Func::Cot,
        "arcsin" => Func::Asin,
        "arccos" => Func::Acos,
        "arctan" | "arctg" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "ln" | "log" | "lg" => Func::Ln,
        "exp" => Func::Exp,
        _ => return None,
    })
}
