//! Recursive-descent parser from tokens to [`Expr`], with a depth cap and a work budget.

use crate::budget::{Budget, MAX_DEPTH, MAX_PARSE_DEPTH};
use crate::commands::{DECORATIONS, NON_OPERANDS, function_of};
use crate::expr::{Expr, Func};
use crate::groups::split_top;
use crate::lexer::{Tok, render};
use crate::number::{from_base, parse_number};
use num_bigint::BigInt;
use num_rational::BigRational;

/// Why an expression could not be parsed.
#[derive(Debug, Clone)]
pub struct ParseError(pub String);

type PResult<T> = Result<T, ParseError>;

/// Parses a whole token slice as one expression. A ratio `a:b` (one top-level colon) is
/// the quotient `a/b`.
pub fn parse_expr(toks: &[Tok], budget: &Budget) -> PResult<Expr> {
    let parts = split_top(toks, &|t| *t == Tok::Sym(':'));
    match parts.as_slice() {
        [_] => parse_plain(toks, budget),
        // `12:00` and `3:05` are times of day, not ratios.
        [_, [Tok::Num(b)]] if b.starts_with('0') => Err(ParseError("a time of day".into())),
        [a, b] if !a.is_empty() && !b.is_empty() => Ok(Expr::Div(
            Box::new(parse_plain(a, budget)?),
            Box::new(parse_plain(b, budget)?),
        )),
        _ => Err(ParseError("a ratio has two parts".into())),
    }
}

/// Parses a token slice without top-level colons.
fn parse_plain(toks: &[Tok], budget: &Budget) -> PResult<Expr> {
    let mut p = Parser {
        toks: toks.to_vec(),
        pos: 0,
        depth: 0,
        abs_depth: 0,
        budget,
    };
    let e = p.sum()?;
    if p.pos != p.toks.len() {
        return Err(ParseError(format!("unexpected {:?}", p.toks[p.pos])));
    }
    Ok(e)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    abs_depth: usize,
    budget: &'a Budget,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(ParseError(format!("expected '{c}'")))
        }
    }

    fn is_cmd(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Cmd(n)) if n == name)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        self.budget
            .tick(1)
            .map_err(|_| ParseError("budget spent".into()))?;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(ParseError("expression nested too deeply".into()));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Whether the next token can start an operand (for implicit multiplication).
    fn starts_operand(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_)) => true,
            Some(Tok::Sym('(' | '[' | '{')) => true,
            Some(Tok::Sym('|')) => self.abs_depth == 0,
            Some(Tok::Cmd(n)) => !NON_OPERANDS.contains(&n.as_str()),
            _ => false,
        }
    }

    fn sum(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut terms = vec![self.term()?];
        loop {
            match self.peek() {
                Some(Tok::Sym('+')) => {
                    self.pos += 1;
                    terms.push(self.term()?);
                }
                Some(Tok::Sym('-')) => {
                    self.pos += 1;
                    terms.push(Expr::Neg(Box::new(self.term()?)));
                }
                Some(Tok::Cmd(n)) if n == "pm" => {
                    self.pos += 1;
                    terms.push(Expr::Pm(Box::new(self.term()?)));
                }
                Some(Tok::Cmd(n)) if n == "mp" => {
                    self.pos += 1;
                    terms.push(Expr::Neg(Box::new(Expr::Pm(Box::new(self.term()?)))));
                }
                _ => break,
            }
            self.budget
                .tick(1)
                .map_err(|_| ParseError("budget spent".into()))?;
        }
        self.leave();
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Expr::Group(vec![]))
        } else {
            Expr::Add(terms)
        })
    }

    fn term(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut factors = vec![self.factor()?];
        let mut divisions = 0;
        loop {
            self.budget
                .tick(1)
                .map_err(|_| ParseError("budget spent".into()))?;
            match self.peek() {
                Some(Tok::Sym('*')) => {
                    self.pos += 1;
                    factors.push(self.factor()?);
                }
                Some(Tok::Cmd(n)) if n == "cdot" || n == "times" => {
                    self.pos += 1;
                    factors.push(self.factor()?);
                }
                _ if self.peek() == Some(&Tok::Sym('/')) || self.is_cmd("div") => {
                    self.pos += 1;
                    divisions += 1;
                    if divisions > MAX_DEPTH {
                        return Err(ParseError("too many divisions".into()));
                    }
                    let denominator = self.factor()?;
                    let numerator = if factors.len() == 1 {
                        factors.remove(0)
                    } else {
                        Expr::Mul(std::mem::take(&mut factors))
                    };
                    factors = vec![Expr::Div(Box::new(numerator), Box::new(denominator))];
                }
                Some(Tok::Cmd(n))
                    if n == "frac" && factors.len() == 1 && self.mixed_number_base(&factors[0]) =>
                {
                    // `137\frac{1}{2}` is a mixed number.
                    let fraction = self.postfix()?;
                    let whole = factors.remove(0);
                    factors.push(match fraction {
                        Expr::Div(a, b) if matches!((&*a, &*b), (Expr::Num(_), Expr::Num(_))) => {
                            mixed(whole, Expr::Div(a, b))
                        }
                        other => Expr::Mul(vec![whole, other]),
                    });
                }
                Some(Tok::Num(_))
                    if factors.len() == 1
                        && self.mixed_number_base(&factors[0])
                        && self.slash_fraction_follows() =>
                {
                    // `4 4/9` written in plain text is a mixed number too; its fraction is
                    // proper (`11 6/6` and `4 4/0` are no numbers).
                    let p = self.atom()?;
                    self.pos += 1;
                    let q = self.atom()?;
                    let proper = matches!((&p, &q), (Expr::Num(p), Expr::Num(q)) if p < q);
                    if !proper {
                        return Err(ParseError(
                            "a mixed number whose fraction is not proper".into(),
                        ));
                    }
                    let whole = factors.remove(0);
                    factors.push(mixed(whole, Expr::Div(Box::new(p), Box::new(q))));
                }
                _ if self.starts_operand() => factors.push(self.postfix()?),
                _ => break,
            }
        }
        self.leave();
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Expr::Mul(factors)
        })
    }

    /// Whether the next tokens are `p/q` with integer literals, and nothing binds tighter
    /// after them.
    fn slash_fraction_follows(&self) -> bool {
        let int = |k: usize| matches!(self.toks.get(k), Some(Tok::Num(s)) if s.bytes().all(|b| b.is_ascii_digit()));
        int(self.pos)
            && self.toks.get(self.pos + 1) == Some(&Tok::Sym('/'))
            && int(self.pos + 2)
            && !matches!(
                self.toks.get(self.pos + 3),
                Some(Tok::Sym('^' | '_' | '!' | '(') | Tok::Num(_) | Tok::Letter(_))
            )
    }

    /// Whether `e`, just read from a plain integer literal (or its negation), can start a
    /// mixed number.
    fn mixed_number_base(&self, e: &Expr) -> bool {
        let whole = match e {
            Expr::Neg(inner) => &**inner,
            other => other,
        };
        matches!(whole, Expr::Num(n) if n.is_integer())
            && self.pos > 0
            && matches!(self.toks.get(self.pos - 1), Some(Tok::Num(s)) if !s.contains('.'))
    }

    fn factor(&mut self) -> PResult<Expr> {
        self.enter()?;
        let e = match self.peek() {
            Some(Tok::Sym('-')) => {
                self.pos += 1;
                Expr::Neg(Box::new(self.factor()?))
            }
            Some(Tok::Sym('+')) => {
                self.pos += 1;
                self.factor()?
            }
            Some(Tok::Cmd(n)) if n == "pm" => {
                self.pos += 1;
                Expr::Pm(Box::new(self.factor()?))
            }
            Some(Tok::Cmd(n)) if n == "mp" => {
                self.pos += 1;
                Expr::Neg(Box::new(Expr::Pm(Box::new(self.factor()?))))
            }
            _ => self.postfix()?,
        };
        self.leave();
        Ok(e)
    }

    fn postfix(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut base = self.atom()?;
        // `I(0)`, `x(1)`: a quantity evaluated at a number is a name of its own.
        if let Expr::Sym(name) = &base
            && let (Some(Tok::Sym('(')), Some(Tok::Num(n)), Some(Tok::Sym(')'))) = (
                self.toks.get(self.pos),
                self.toks.get(self.pos + 1),
                self.toks.get(self.pos + 2),
            )
        {
            base = Expr::Sym(format!("{name}({n})"));
            self.pos += 3;
        }
        loop {
            self.budget
                .tick(1)
                .map_err(|_| ParseError("budget spent".into()))?;
            match self.peek() {
                Some(Tok::Sym('^')) => {
                    self.pos += 1;
                    if self.prime_follows() {
                        base = prime(base)?;
                        continue;
                    }
                    let ex = self.script()?;
                    base = Expr::Pow(Box::new(base), Box::new(ex));
                }
                Some(Tok::Sym('_')) => {
                    self.pos += 1;
                    let sub = self.subscript_text()?;
                    base = attach_subscript(base, &sub)?;
                }
                Some(Tok::Sym('!')) => {
                    self.pos += 1;
                    base = Expr::Func(Func::Factorial, vec![base]);
                }
                Some(Tok::Sym('\'')) => {
                    self.pos += 1;
                    base = prime(base)?;
                }
                Some(Tok::Sym('%')) => {
                    self.pos += 1;
                    let hundred = Expr::Num(BigRational::from_integer(BigInt::from(100)));
                    let fraction = Expr::Div(Box::new(base.clone()), Box::new(hundred));
                    base = Expr::Alt(Box::new(fraction), Box::new(base));
                }
                _ => break,
            }
        }
        self.leave();
        Ok(base)
    }

    /// After `^`: consumes `\prime`, `{\prime}` or `{\prime\prime}` if present.
    fn prime_follows(&mut self) -> bool {
        if self.is_cmd("prime") {
            self.pos += 1;
            return true;
        }
        if self.peek() == Some(&Tok::Sym('{'))
            && matches!(self.toks.get(self.pos + 1), Some(Tok::Cmd(n)) if n == "prime")
        {
            let mut j = self.pos + 1;
            while matches!(self.toks.get(j), Some(Tok::Cmd(n)) if n == "prime") {
                j += 1;
            }
            if self.toks.get(j) == Some(&Tok::Sym('}')) {
                self.pos = j + 1;
                return true;
            }
        }
        false
    }

    /// A superscript: `{…}`, a signed number, a letter or a command operand.
    fn script(&mut self) -> PResult<Expr> {
        self.enter()?;
        let e = match self.peek() {
            Some(Tok::Sym('{')) => {
                self.pos += 1;
                let e = self.sum()?;
                self.expect('}')?;
                e
            }
            Some(Tok::Sym('-')) => {
                self.pos += 1;
                Expr::Neg(Box::new(self.script()?))
            }
            Some(Tok::Sym('(')) => self.atom()?,
            _ => self.atom()?,
        };
        self.leave();
        Ok(e)
    }

    /// The text of a subscript: `{…}` rendered, or one token.
    fn subscript_text(&mut self) -> PResult<String> {
        if self.eat('{') {
            let start = self.pos;
            let mut depth = 1;
            while let Some(t) = self.next() {
                match t {
                    Tok::Sym('{') => depth += 1,
                    Tok::Sym('}') => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(render(&self.toks[start..self.pos - 1]));
                        }
                    }
                    _ => {}
                }
            }
            return Err(ParseError("unclosed subscript".into()));
        }
        match self.next() {
            Some(Tok::Num(s)) => Ok(s),
            Some(t @ (Tok::Letter(_) | Tok::Cmd(_))) => Ok(render(&[t])),
            _ => Err(ParseError("bad subscript".into())),
        }
    }

    /// A LaTeX macro argument: `{…}`, or a single character / token.
    fn macro_arg(&mut self) -> PResult<Expr> {
        match self.peek().cloned() {
            Some(Tok::Sym('{')) => {
                self.pos += 1;
                let e = self.sum()?;
                self.expect('}')?;
                Ok(e)
            }
            Some(Tok::Num(s)) if s.len() > 1 && !s.starts_with('.') => {
                // `\frac12`: the argument is the first digit only.
                let (first, rest) = s.split_at(1);
                self.toks[self.pos] = Tok::Num(rest.to_string());
                parse_number(first).ok_or_else(|| ParseError("bad number".into()))
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> PResult<Expr> {
        self.enter()?;
        let tok = self
            .next()
            .ok_or_else(|| ParseError("unexpected end".into()))?;
        let e = match tok {
            Tok::Num(s) => parse_number(&s).ok_or_else(|| ParseError(format!("bad number {s}")))?,
            Tok::Letter('e') => Expr::E,
            Tok::Letter(c) => Expr::Sym(c.to_string()),
            Tok::Sym('(') => self.bracketed(')')?,
            Tok::Sym('[') => self.bracketed(']')?,
            Tok::Sym('{') => {
                let e = self.sum()?;
                self.expect('}')?;
                e
            }
            Tok::Sym('|') => {
                self.abs_depth += 1;
                let e = self.sum()?;
                self.abs_depth -= 1;
                self.expect('|')?;
                Expr::Func(Func::Abs, vec![e])
            }
            Tok::Cmd(name) => self.command(&name)?,
            other => return Err(ParseError(format!("unexpected {other:?}"))),
        };
        self.leave();
        Ok(e)
    }

    /// Contents of `( … )` or `[ … ]`: one expression, or a `Group` of comma-separated ones.
    fn bracketed(&mut self, close: char) -> PResult<Expr> {
        let saved_abs = self.abs_depth;
        self.abs_depth = 0;
        let mut items = vec![self.sum()?];
        while self.eat(',') {
            items.push(self.sum()?);
        }
        self.abs_depth = saved_abs;
        if !self.eat(close) && !self.eat(if close == ')' { ']' } else { ')' }) {
            return Err(ParseError(format!("expected '{close}'")));
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Group(items)
        })
    }

    fn command(&mut self, name: &str) -> PResult<Expr> {
        if let Some(f) = function_of(name) {
            return self.function(f, name == "log");
        }
        Ok(match name {
            "frac" => {
                let a = self.macro_arg()?;
                let b = self.macro_arg()?;
                Expr::Div(Box::new(a), Box::new(b))
            }
            "sqrt" => {
                if self.eat('[') {
                    let n = self.sum()?;
                    self.expect(']')?;
                    let x = self.macro_arg()?;
                    Expr::Func(Func::Root, vec![x, n])
                } else {
                    Expr::Func(Func::Sqrt, vec![self.macro_arg()?])
                }
            }
            "binom" => {
                let n = self.macro_arg()?;
                let k = self.macro_arg()?;
                Expr::Func(Func::Binom, vec![n, k])
            }
            "pi" => Expr::Pi,
            "infty" | "infin" => Expr::Inf,
            "lfloor" | "lceil" => {
                let e = self.sum()?;
                let close = if name == "lfloor" { "rfloor" } else { "rceil" };
                if !self.is_cmd(close) {
                    return Err(ParseError(format!("expected \\{close}")));
                }
                self.pos += 1;
                Expr::Func(
                    if name == "lfloor" {
                        Func::Floor
                    } else {
                        Func::Ceil
                    },
                    vec![e],
                )
            }
            "langle" => {
                let mut items = vec![self.sum()?];
                while self.eat(',') {
                    items.push(self.sum()?);
                }
                if !self.is_cmd("rangle") {
                    return Err(ParseError("expected \\rangle".into()));
                }
                self.pos += 1;
                Expr::Group(items)
            }
            d if DECORATIONS.contains(&d) => match self.macro_arg()? {
                Expr::Sym(s) => Expr::Sym(format!("\\{d}{{{s}}}")),
                Expr::E => Expr::Sym(format!("\\{d}{{e}}")),
                other => other,
            },
            n if NON_OPERANDS.contains(&n) => return Err(ParseError(format!("unexpected \\{n}"))),
            n => Expr::Sym(format!("\\{n}")),
        })
    }

    /// A function application: optional `^power` / `_base`, then the argument.
    fn function(&mut self, f: Func, is_log: bool) -> PResult<Expr> {
        let mut power = None;
        let mut base = None;
        loop {
            if self.eat('^') {
                power = Some(self.script()?);
            } else if is_log && self.eat('_') {
                base = Some(self.script()?);
            } else {
                break;
            }
        }
        let arg = match self.peek() {
            Some(Tok::Sym('(')) => {
                self.pos += 1;
                let e = self.sum()?;
                self.expect(')')?;
                e
            }
            Some(Tok::Sym('{')) => {
                self.pos += 1;
                let e = self.sum()?;
                self.expect('}')?;
                e
            }
            _ => self.implicit_argument()?,
        };
        let mut e = match base {
            Some(b) => Expr::Func(Func::Log, vec![arg, b]),
            None => Expr::Func(f, vec![arg]),
        };
        if let Some(p) = power {
            let inverse = match (&p, f) {
                (Expr::Neg(one), Func::Sin | Func::Cos | Func::Tan)
                    if **one == Expr::Num(BigRational::from_integer(1.into())) =>
                {
                    Some(match f {
                        Func::Sin => Func::Asin,
                        Func::Cos => Func::Acos,
                        _ => Func::Atan,
                    })
                }
                _ => None,
            };
            e = match (inverse, e) {
                (Some(inv), Expr::Func(_, args)) => Expr::Func(inv, args),
                (_, e) => Expr::Pow(Box::new(e), Box::new(p)),
            };
        }
        Ok(e)
    }

    /// `\sin 2x`: a run of operands joined by implicit multiplication, stopping at a function.
    fn implicit_argument(&mut self) -> PResult<Expr> {
        self.enter()?;
        let mut factors = vec![self.factor()?];
        while self.starts_operand()
            && !matches!(self.peek(), Some(Tok::Cmd(n)) if function_of(n).is_some())
        {
            factors.push(self.postfix()?);
        }
        self.leave();
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Expr::Mul(factors)
        })
    }
}

/// The mixed number `whole fraction` (`-4 4/9` is `-(4 + 4/9)`).
fn mixed(whole: Expr, fraction: Expr) -> Expr {
    match whole {
        Expr::Neg(n) => Expr::Neg(Box::new(Expr::Add(vec![*n, fraction]))),
        n => Expr::Add(vec![n, fraction]),
    }
}

/// Marks a symbol as primed (`f'`).
fn prime(base: Expr) -> PResult<Expr> {
    match base {
        Expr::Sym(s) => Ok(Expr::Sym(format!("{s}'"))),
        Expr::E => Ok(Expr::Sym("e'".into())),
        _ => Err(ParseError("prime on a non-symbol".into())),
    }
}

/// Applies a subscript: renames symbols, or reads `52_8` as a number in base 8.
fn attach_subscript(base: Expr, sub: &str) -> PResult<Expr> {
    let sub = sub.trim_matches(|c| c == '{' || c == '}');
    match base {
        Expr::Sym(s) => Ok(Expr::Sym(format!("{s}_{sub}"))),
        Expr::E => Ok(Expr::Sym(format!("e_{sub}"))),
        Expr::Pow(b, e) => match *b {
            Expr::Sym(s) => Ok(Expr::Pow(Box::new(Expr::Sym(format!("{s}_{sub}"))), e)),
            _ => Err(ParseError("subscript on a power".into())),
        },
        Expr::Num(ref n) if n.is_integer() => {
            let radix: u32 = sub.parse().map_err(|_| ParseError("bad base".into()))?;
            let digits = n.to_integer().to_string();
            let value =
                from_base(&digits, radix).ok_or_else(|| ParseError("digits out of base".into()))?;
            Ok(Expr::Alt(
                Box::new(Expr::Num(BigRational::from_integer(value))),
                Box::new(base),
            ))
        }
        _ => Err(ParseError("unsupported subscript".into())),
    }
}
