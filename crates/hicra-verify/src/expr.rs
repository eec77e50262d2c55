//! The expression tree produced by the parser.

use num_rational::BigRational;

/// Functions the evaluators know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Secant.
    Sec,
    /// Cosecant.
    Csc,
    /// Cotangent.
    Cot,
    /// Arc sine.
    Asin,
    /// Arc cosine.
    Acos,
    /// Arc tangent.
    Atan,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// Hyperbolic tangent.
    Tanh,
    /// Natural logarithm (`\ln`, and `\log` without a base).
    Ln,
    /// Logarithm with a base: args `[x, base]`.
    Log,
    /// Exponential.
    Exp,
    /// Square root.
    Sqrt,
    /// n-th root: args `[x, n]`.
    Root,
    /// Absolute value.
    Abs,
    /// Floor.
    Floor,
    /// Ceiling.
    Ceil,
    /// Factorial (Gamma(x + 1) off the integers).
    Factorial,
    /// Binomial coefficient: args `[n, k]`.
    Binom,
}

/// A parsed mathematical expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// An exact rational literal.
    Num(BigRational),
    /// A decimal literal known to `±½·10^ulp`, with `sig` significant digits.
    Dec {
        /// Exact value as written.
        value: BigRational,
        /// Power of ten of the last written digit.
        ulp: i64,
        /// Number of significant digits written.
        sig: u32,
    },
    /// A variable or named quantity (`x`, `\theta`, `q_0`).
    Sym(String),
    /// π.
    Pi,
    /// Euler's number.
    E,
    /// ∞.
    Inf,
    /// Sum.
    Add(Vec<Expr>),
    /// Product.
    Mul(Vec<Expr>),
    /// Negation.
    Neg(Box<Expr>),
    /// Quotient.
    Div(Box<Expr>, Box<Expr>),
    /// Power.
    Pow(Box<Expr>, Box<Expr>),
    /// Function application.
    Func(Func, Vec<Expr>),
    /// `±x`: expands into two answers.
    Pm(Box<Expr>),
    /// Two readings of the same notation (`50%` as 0.5 or 50; `52_8` as 42 or 52).
    Alt(Box<Expr>, Box<Expr>),
    /// A parenthesised list inside an expression (function arguments): not evaluable.
    Group(Vec<Expr>),
}

impl Expr {
    /// Whether the tree contains a `±`.
    pub fn has_pm(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Pm(_)))
    }

    /// Whether the tree contains an `Alt`.
    pub fn has_alt(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Alt(..)))
    }

    /// Whether any node satisfies `pred`.
    pub fn any(&self, pred: &dyn Fn(&Expr) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        match self {
            Expr::Add(v) | Expr::Mul(v) | Expr::Func(_, v) | Expr::Group(v) => {
                v.iter().any(|e| e.any(pred))
            }
            Expr::Neg(a) | Expr::Pm(a) => a.any(pred),
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Alt(a, b) => a.any(pred) || b.any(pred),
            _ => false,
        }
    }

    /// Collects variable names (sorted, unique).
    pub fn symbols(&self, out: &mut Vec<String>) {
        match self {
            Expr::Sym(s) if !out.contains(s) => {
                out.push(s.clone());
            }
            Expr::Add(v) | Expr::Mul(v) | Expr::Func(_, v) | Expr::Group(v) => {
                v.iter().for_each(|e| e.symbols(out))
            }
            Expr::Neg(a) | Expr::Pm(a) => a.symbols(out),
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Alt(a, b) => {
                a.symbols(out);
                b.symbols(out);
            }
            _ => {}
        }
    }

    /// Expands `±`: the first (up to `limit`) `Pm` nodes become `+x` and `-x` in turn.
    pub fn expand_pm(&self, limit: usize) -> Vec<Expr> {
        let mut out = vec![self.clone()];
        for _ in 0..limit {
            if !out.iter().any(Expr::has_pm) {
                break;
            }
            let mut next = Vec::new();
            for e in &out {
                let (plus, minus) = (e.replace_first_pm(false), e.replace_first_pm(true));
                next.push(plus.0);
                if plus.1 {
                    next.push(minus.0);
                }
            }
            out = next;
        }
        out
    }

    /// Replaces the first `Pm(x)` with `x` or `-x`; reports whether one was found.
    fn replace_first_pm(&self, negative: bool) -> (Expr, bool) {
        match self {
            Expr::Pm(a) => {
                let inner = (**a).clone();
                (
                    if negative {
                        Expr::Neg(Box::new(inner))
                    } else {
                        inner
                    },
                    true,
                )
            }
            Expr::Add(v) | Expr::Mul(v) | Expr::Func(_, v) | Expr::Group(v) => {
                let mut found = false;
                let items: Vec<Expr> = v
                    .iter()
                    .map(|e| {
                        if found {
                            e.clone()
                        } else {
                            let (r, f) = e.replace_first_pm(negative);
                            found = f;
                            r
                        }
                    })
                    .collect();
                let rebuilt = match self {
                    Expr::Add(_) => Expr::Add(items),
                    Expr::Mul(_) => Expr::Mul(items),
                    Expr::Func(f, _) => Expr::Func(*f, items),
                    _ => Expr::Group(items),
                };
                (rebuilt, found)
            }
            Expr::Neg(a) => {
                let (r, f) = a.replace_first_pm(negative);
                (Expr::Neg(Box::new(r)), f)
            }
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Alt(a, b) => {
                let (ra, fa) = a.replace_first_pm(negative);
                let (rb, fb) = if fa {
                    ((**b).clone(), false)
                } else {
                    b.replace_first_pm(negative)
                };
                let rebuilt = match self {
                    Expr::Div(..) => Expr::Div(Box::new(ra), Box::new(rb)),
                    Expr::Pow(..) => Expr::Pow(Box::new(ra), Box::new(rb)),
                    _ => Expr::Alt(Box::new(ra), Box::new(rb)),
                };
                (rebuilt, fa || fb)
            }
            _ => (self.clone(), false),
        }
    }

    /// The tree with every variable `name` replaced by `value`.
    pub fn substitute(&self, name: &str, value: &Expr) -> Expr {
        let map = |v: &Vec<Expr>| v.iter().map(|e| e.substitute(name, value)).collect();
        let boxed = |e: &Expr| Box::new(e.substitute(name, value));
        match self {
            Expr::Sym(s) if s == name => value.clone(),
            Expr::Add(v) => Expr::Add(map(v)),
            Expr::Mul(v) => Expr::Mul(map(v)),
            Expr::Func(f, v) => Expr::Func(*f, map(v)),
            Expr::Group(v) => Expr::Group(map(v)),
            Expr::Neg(a) => Expr::Neg(boxed(a)),
            Expr::Pm(a) => Expr::Pm(boxed(a)),
            Expr::Div(a, b) => Expr::Div(boxed(a), boxed(b)),
            Expr::Pow(a, b) => Expr::Pow(boxed(a), boxed(b)),
            Expr::Alt(a, b) => Expr::Alt(boxed(a), boxed(b)),
            _ => self.clone(),
        }
    }

    /// Resolves every `Alt` to its first (`second = false`) or second reading.
    pub fn choose_alt(&self, second: bool) -> Expr {
        let map = |v: &Vec<Expr>| v.iter().map(|e| e.choose_alt(second)).collect::<Vec<_>>();
        match self {
            Expr::Alt(a, b) => {
                if second {
                    b.choose_alt(second)
                } else {
                    a.choose_alt(second)
                }
            }
            Expr::Add(v) => Expr::Add(map(v)),
            Expr::Mul(v) => Expr::Mul(map(v)),
            Expr::Func(f, v) => Expr::Func(*f, map(v)),
            Expr::Group(v) => Expr::Group(map(v)),
            Expr::Neg(a) => Expr::Neg(Box::new(a.choose_alt(second))),
            Expr::Pm(a) => Expr::Pm(Box::new(a.choose_alt(second))),
            Expr::Div(a, b) => Expr::Div(
                Box::new(a.choose_alt(second)),
                Box::new(b.choose_alt(second)),
            ),
            Expr::Pow(a, b) => Expr::Pow(
                Box::new(a.choose_alt(second)),
                Box::new(b.choose_alt(second)),
            ),
            _ => self.clone(),
        }
    }
}
