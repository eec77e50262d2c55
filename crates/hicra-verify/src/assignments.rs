//! Lists of assignments as the solutions they state: `a = 2, b = 5; a = 5, b = 2` is the set
//! of tuples `(2, 5), (5, 2)`, and `x = 2, y = 5` is the tuple `(2, 5)` (values ordered by
//! the names). A list of values for one name (`x = 3, x = -5`) stays a set of answers.

use crate::answer_form::Answer;

/// Most names in one solution tuple.
const MAX_NAMES: usize = 8;

/// The name and constant value of an assignment `name = value`.
fn assignment(a: &Answer) -> Option<(&str, &Answer)> {
    let Answer::Equation {
        lhs_is_name: true,
        lhs_text,
        rhs,
        ..
    } = a
    else {
        return None;
    };
    let mut names = Vec::new();
    rhs.symbols(&mut names);
    names.is_empty().then_some((lhs_text.as_str(), a))
}

/// The value of an assignment as an answer.
fn value(a: &Answer) -> Answer {
    match a {
        Answer::Equation { rhs, .. } => Answer::Expr(rhs.clone()),
        other => other.clone(),
    }
}

/// The names of one group, sorted.
fn sorted_names<'a>(group: &[(&'a str, &Answer)]) -> Vec<&'a str> {
    let mut n: Vec<&str> = group.iter().map(|(n, _)| *n).collect();
    n.sort_unstable();
    n
}

/// The answer a flat list stands for: tuples when it lists assignments to the same two or
/// more names (a new tuple starts where a name repeats), else the set of its items.
pub fn solutions(items: Vec<Answer>) -> Answer {
    let Some(pairs) = items
        .iter()
        .map(assignment)
        .collect::<Option<Vec<(&str, &Answer)>>>()
        .filter(|p| !p.is_empty())
    else {
        return Answer::Set(items);
    };
    let mut groups: Vec<Vec<(&str, &Answer)>> = Vec::new();
    for (name, a) in pairs {
        match groups.last_mut() {
            Some(g) if !g.iter().any(|(n, _)| *n == name) && g.len() < MAX_NAMES => {
                g.push((name, a))
            }
            _ => groups.push(vec![(name, a)]),
        }
    }
    let first = sorted_names(&groups[0]);
    if first.len() < 2 || groups.iter().any(|g| sorted_names(g) != first) {
        return Answer::Set(items);
    }
    let mut tuples: Vec<Answer> = groups
        .into_iter()
        .map(|mut g| {
            g.sort_by(|a, b| a.0.cmp(b.0));
            Answer::Seq {
                open: '(',
                close: ')',
                items: g.into_iter().map(|(_, a)| value(a)).collect(),
            }
        })
        .collect();
    if tuples.len() == 1 {
        tuples.remove(0)
    } else {
        Answer::Set(tuples)
    }
}
