//! Labelled cases for each equivalence class the verifier documents (crate docs, "What is
//! equal, class by class"), graded end to end in flexible mode (extraction from a response,
//! then comparison). The labels are what a careful human grader says, written by hand.

mod labelled;

use labelled::check;

#[test]
fn class1_latex_answers_outside_boxes() {
    check(
        "1 latex outside boxes",
        &[
            (
                "\\frac{2}{7}",
                "So the probability is $\\frac{2}{7}$.",
                true,
            ),
            (
                "\\frac{2}{7}",
                "So the probability is $\\frac{2}{9}$.",
                false,
            ),
            ("-\\frac{7}{4}", "Hence the slope is $-\\frac{7}{4}$", true),
            ("4", "Hence the slope is $-\\frac{7}{4}$", false),
            ("\\frac{2}{5}", "We get $\\frac25$.", true),
            ("25", "We get $\\frac25$.", false),
            ("(-3, 8)", "The solution set is \\(x \\in (-3, 8)\\).", true),
            ("\\sqrt{5}", "The distance is $$\\sqrt5$$", true),
            ("\\sqrt{5}", "The distance is $$\\sqrt6$$", false),
            ("12", "Adding them,\n\\[ 5 + 7 = 12 \\]", true),
            (
                "11",
                "\\begin{align*} x &= 5+5+1 \\\\ &= 11 \\end{align*}",
                true,
            ),
            ("3k", "So $x = 5+5+1 = 3k$.", true),
            ("x = 3", "Therefore $x = 3$.", true),
            ("3", "Therefore $x = 3$.", true),
            ("7", "We know $x=2$. The final answer is 7.", true),
        ],
    );
}

#[test]
fn class2_golds_that_are_not_bare_answers() {
    check(
        "2 golds with delimiters or solutions",
        &[
            ("$x \\geq 7$", "\\boxed{x \\ge 7}", true),
            ("$x \\geq 7$", "\\boxed{x \\ge 8}", false),
            (
                "Subtracting, we find $2x = 14$, so the answer is $\\boxed{7}$.",
                "so x is \\boxed{7}",
                true,
            ),
            (
                "Multiplying out, we get that the total is $\\frac{3}{4}$.",
                "The answer is $0.75$",
                true,
            ),
            (
                "Multiplying out, we get that the total is $\\frac{3}{4}$.",
                "The answer is $0.8$",
                false,
            ),
            ("She has 3 + 4 = 7 apples.\n#### 7", "\\boxed{7}", true),
        ],
    );
}

#[test]
fn class3_latex_shorthands_and_decoration() {
    check(
        "3 shorthands",
        &[
            ("\\frac{2}{5}", "\\boxed{\\frac25}", true),
            ("\\frac{2}{5}", "\\boxed{\\frac2{5}}", true),
            ("\\frac{2}{5}", "\\boxed{\\frac52}", false),
            ("\\sqrt{5}", "\\boxed{\\sqrt5}", true),
            ("\\frac{1}{2}", "\\boxed{\\dfrac{1}{2}}", true),
            ("\\frac{1}{2}", "\\boxed{\\tfrac12}", true),
            ("(1, 2)", "\\boxed{\\left( 1, 2 \\right)}", true),
            ("1000", "\\boxed{1\\,000}", true),
            ("3\\sqrt{2}", "\\boxed{3\\!\\sqrt{2}}", true),
            ("5", "\\boxed{\\textbf{5}}", true),
            ("5", "\\boxed{5\\text{ cm}}", true),
            ("5", "\\boxed{6\\text{ cm}}", false),
            ("30", "\\boxed{30^\\circ}", true),
            ("30^\\circ", "\\boxed{30}", true),
            ("25\\%", "\\boxed{25}", true),
            ("25", "\\boxed{25\\%}", true),
            ("2", "\\boxed{x~=~2}", true),
        ],
    );
}

#[test]
fn class4_number_formats() {
    check(
        "4 number formats",
        &[
            ("1000", "$1 000$", true),
            ("1000", "$1,000$", true),
            ("12345", "$12{,}345$", true),
            (
                "12345",
                "The final answer is $12{,}345$. I hope it is correct.",
                true,
            ),
            (
                "12345",
                "The final answer is $12{,}346$. I hope it is correct.",
                false,
            ),
            ("0.7", "The answer is .7", true),
            ("7", "The answer is .7", false),
            ("2500.75", "The answer is 2500,75", true),
            ("3.14", "$3,14$", true),
            ("0.125", "The answer is 0,125.", true),
            ("125", "The answer is 0,125.", false),
            ("7", "The code is QX7BR.", false),
            ("1,000,000", "\\boxed{1000000}", true),
            ("-4.5", "we get 3 apples and then -4.5 more", true),
        ],
    );
}

#[test]
fn class5_relations_and_intervals() {
    check(
        "5 relations",
        &[
            ("x \\geq 7", "\\boxed{7 \\leq x}", true),
            ("x \\geq 7", "\\boxed{x \\ge 7}", true),
            ("x \\geq 7", "\\boxed{x>=7}", true),
            ("x \\geq 7", "\\boxed{x>7}", false),
            ("x \\leq 7", "\\boxed{x<=7}", true),
            ("x < 3", "\\boxed{x \\lt 3}", true),
            ("x > 3", "\\boxed{x \\gt 3}", true),
            ("x > 3", "\\boxed{(3, \\infty)}", true),
            ("(3, \\infty)", "\\boxed{x > 3}", true),
            ("[3, \\infty)", "\\boxed{x > 3}", false),
            ("(-3, 8)", "\\boxed{-3 < x < 8}", true),
            ("(-3, 8)", "\\boxed{x \\in (-3,8)}", true),
            ("(-3, 8)", "\\boxed{-3 \\le x < 8}", false),
            ("x \\neq 2", "\\boxed{x \\ne 2}", true),
            ("x \\neq 2", "\\boxed{x != 2}", true),
        ],
    );
}

#[test]
fn class6_named_answers_and_sets() {
    check(
        "6 named answers",
        &[
            ("(1,4,9)", "\\boxed{(a,b,c)=(1,4,9)}", true),
            ("(1,4,9)", "\\boxed{(a,b,c)=(1,9,4)}", false),
            (
                "\\frac{2}{\\sqrt{5}}",
                "$\\frac{AM}{MB}=\\frac{2}{\\sqrt5}$",
                true,
            ),
            (
                "\\frac{2}{\\sqrt{5}}",
                "$\\frac{AM}{MB}=\\frac{3}{\\sqrt5}$",
                false,
            ),
            ("\\{-5, 3\\}", "\\boxed{3} and \\boxed{-5}", true),
            ("\\{-5, 3\\}", "so $x = 3$ or $x = -5$", true),
            ("\\{-5, 3\\}", "so $x = 3$. Also $x = -5$", false),
            ("\\{-5, 3\\}", "so $x = 3 \\text{ or } x = -5$", true),
            ("\\{-5, 3\\}", "\\boxed{3 \\quad -5}", true),
            ("\\{-5, 3\\}", "\\boxed{3; -5}", true),
            ("\\{-5, 3\\}", "\\boxed{3 \\text{ and } -5}", true),
            ("\\{-5, 3\\}", "\\boxed{3}", false),
            ("\\{4,5,6\\}", "\\boxed{4},\\boxed{5},\\boxed{6}", true),
            ("\\{4,5,6\\}", "\\boxed{4},\\boxed{5}", false),
            ("(1, -3, 5)", "\\boxed{(1;-3;5)}", true),
            ("(1, -3, 5)", "\\boxed{(1;3;5)}", false),
            (
                "(2, 9), (9, 2)",
                "$(x, y) = (2, 9) \\quad \\text{and} \\quad (9, 2)$",
                true,
            ),
            (
                "(2, 9), (9, 2)",
                "$(x, y) = (2, 9) \\quad \\text{and} \\quad (2, 9)$",
                false,
            ),
        ],
    );
}

#[test]
fn class7_equations() {
    check(
        "7 equations",
        &[
            (
                "\\frac{x^2}{9} + \\frac{y^2}{4} = 1",
                "$x^2/18 + y^2/8 = 1/2$",
                true,
            ),
            (
                "\\frac{x^2}{9} + \\frac{y^2}{4} = 1",
                "$x^2/18 + y^2/4 = 1/2$",
                false,
            ),
            ("y = 2x + 1", "\\boxed{2x - y + 1 = 0}", true),
            ("y = 2x + 1", "\\boxed{2x - y - 1 = 0}", false),
            ("f(x) = 2, f(x) = -2", "$f(x)=2 \\text{ or } f(x)=-2$", true),
            ("f(x) = 2, f(x) = -2", "$f(x)=2 \\text{ or } f(x)=2$", false),
            ("x + y = 3", "\\boxed{3}", false),
        ],
    );
}

#[test]
fn complex_unit_is_a_variable() {
    // Documented rule: `i` is an ordinary variable. Answers equal as polynomials in `i`
    // match; identities that need i^2 = -1 do not.
    check(
        "complex i",
        &[
            ("1 + 2i", "\\boxed{2i + 1}", true),
            ("1 + 2i", "\\boxed{1 - 2i}", false),
            (
                "\\frac{1}{2} + \\frac{i}{2}",
                "\\boxed{\\frac{1+i}{2}}",
                true,
            ),
            ("-1", "\\boxed{i^2}", false),
        ],
    );
}
