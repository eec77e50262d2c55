//! Labelled cases for answer forms the verifier reads since 2026-12-07: labels in a final
//! sentence, plain numbers with units, bare LaTeX, approximations, relations up to
//! equivalence, matrices, sets against tuples, ratios, several boxes, named golds, text that
//! is not an answer, and pairs of equations. Graded end to end in flexible mode; the labels
//! are what a careful human grader says (Math-Verify's documented rule where a set meets a
//! tuple), written by hand.

mod labelled;

use labelled::check;

/// A final-answer sentence whose math only names something (`$k$`, `$PQRS$`) states its
/// value after it; a value in a later sentence than the last environment is the answer.
#[test]
fn names_in_the_final_sentence() {
    check(
        "1 a label in the math, the value in the sentence",
        &[
            ("17", "Final Answer: The largest $k$ is 17.", true),
            ("17", "Final Answer: The largest $k$ is 18.", false),
            ("48", "The area of $PQRS$ is 48.", true),
            ("48", "The area of $PQRS$ is 46.", false),
            (
                "9",
                "We found $m = \\frac{30}{n}$. Therefore, there are 9 ways.",
                true,
            ),
            (
                "9",
                "We found $m = \\frac{30}{n}$. Therefore, there are 8 ways.",
                false,
            ),
            ("12", "So the number of edges of $G$ equals 12.", true),
            (
                "120",
                "Thus the perimeter of $\\triangle ABC$ is 120 cm.",
                true,
            ),
            ("5", "Hence $x$ is 5.", true),
            ("5", "Hence the value of $x_1$ is 5, as required.", true),
            (
                "\\frac{3}{4}",
                "The probability that $E$ occurs is $\\frac{3}{4}$.",
                true,
            ),
            ("6", "We know $n = 6$ and step 2 is done.", true),
            ("2", "We know $n = 6$ and step 2 is done.", false),
            ("3", "Answer: the smallest $n$ is 3", true),
            ("3", "The answer is that $n$ equals 4.", false),
            (
                "$64$",
                "The box has edges $a$, $b$ and $c$. Final Answer: The volume of $V$ is 64. I hope it is correct.",
                true,
            ),
            (
                "$64$",
                "The box has edges $a$, $b$ and $c$. Final Answer: The volume of $V$ is 60. I hope it is correct.",
                false,
            ),
            (
                "$5$",
                "Let $d$ be the gap, so $d = \\frac{20}{k}$ for a divisor $k$. Hence there are 5 valid choices. I hope it is correct. <|im_start|>user",
                true,
            ),
            (
                "$200$",
                "We compute $$\\frac{a}{b} = \\frac{4}{2} = 2.$$ Therefore the price rises by 200%.",
                true,
            ),
            (
                "$200$",
                "We compute $$\\frac{a}{b} = 2$$ Therefore the price rises by 200%.",
                true,
            ),
            (
                "$7$",
                "Final Answer: Tom walked 7 miles in total. I hope it is correct.",
                true,
            ),
            (
                "$7$",
                "Final Answer: Tom walked 8 miles in total. I hope it is correct.",
                false,
            ),
            (
                "$\\frac{1}{4}$",
                "Final Answer: The probability of $A$ is $\\frac{1}{4}$.",
                true,
            ),
        ],
    );
}

/// The last plain number keeps its thousands separators, currency and units (`2,000.5 kg`,
/// `€1,500`, `1,500m²`), percent, mixed numbers (`4 4/9`); times and open lists are not numbers.
#[test]
fn the_last_number_and_its_units() {
    check(
        "2 last number with units and currency",
        &[
            ("2000.5", "it is not 7 but 2,000.5 kg", true),
            ("7", "it is not 7 but 2,000.5 kg", false),
            ("40\\%", "The price increases by 40%.", true),
            ("40", "The price increases by 40%.", true),
            ("1500", "In the end the bill comes to €1,500.", true),
            (
                "1500",
                "We had 3 rooms, and the floor covers 1,500m² in total",
                true,
            ),
            ("1234.5", "not 12 but 1,234.5€", true),
            ("1250", "The board is 1,250 cm long.", true),
            ("45", "He pays $45 for it.", true),
            ("45", "He pays 45$ for it.", true),
            ("3", "The code QX3 is 12 long", false),
            ("3.75", "Each costs 2 dollars, total £3.75.", true),
            ("$\\frac{40}{9}$", "The answer is 4 4/9.", true),
            ("$4$", "The answer is 4 4/9.", false),
            ("$4$", "The answer is 4 0/9.", true),
            ("$11$", "The answer is 11 6/6.", false),
            ("$12$", "The answer is 11 6/6.", false),
            ("$14916$", "The final answer is $14 {, }916$.", true),
            ("$-\\frac{3}{2}$", "\\boxed{-1\\frac{1}{2}}", true),
            ("$2.5$", "Each share is 2 1/2 pizzas.", true),
            ("12:00", "$12:00$", true),
            ("12:00", "$1:00$", false),
            ("$1,2,3$", "$1, 2, 3, \\ldots$", false),
            ("$1,2,3, \\ldots$", "$1, 2, 3, ...$", true),
            ("$5$", "The total is 5 dollars.", true),
        ],
    );
}

/// A whole response that is bare LaTeX, and LaTeX fractions ending plain text.
#[test]
fn bare_latex_without_delimiters() {
    check(
        "3 bare LaTeX",
        &[
            ("\\frac{7}{3}", "\\frac{7}{3}", true),
            ("-\\frac{7}{3}", "-\\frac{7}{3}", true),
            ("\\frac{7}{3}", "-\\frac{7}{3}", false),
            ("1+\\sqrt{2}", "\\sqrt{2}+1", true),
            ("1+\\sqrt{2}", "\\sqrt{2}-1", false),
            ("\\frac{\\pi}{4}", "\\dfrac{\\pi}{4}", true),
            ("2\\sqrt{3}", "2\\sqrt3", true),
            ("x^2+1", "x^2 + 1", true),
            ("\\frac{7}{3}", "so we get \\frac{7}{3}.", true),
        ],
    );
}

/// The exact side before `\\approx`, `\\sim`, `≈` is the answer.
#[test]
fn approximations_keep_the_exact_side() {
    check(
        "4 approximations",
        &[
            ("\\frac{2}{7}", "$x = 2/7 \\approx 0.29$", true),
            ("\\frac{2}{7}", "$x = 3/7 \\approx 0.43$", false),
            ("\\sqrt{2}", "The side is $\\sqrt{2} \\approx 1.414$.", true),
            ("\\frac{1}{3}", "So $p = \\frac{1}{3} \\sim 0.33$", true),
            (
                "\\frac{22}{7}",
                "\\boxed{\\frac{22}{7} \\approx 3.14}",
                true,
            ),
            ("\\frac{2}{7}", "we get 2/7 ≈ 0.29", true),
            ("10", "$x = 5+5 = 10 \\approx 10.0$", true),
            ("$11$", "$x\\approx11$", true),
            ("$\\frac{1}{3}$", "$x=\\frac{1}{3}\\approx0.33$", true),
            ("$x=\\frac{1}{3}$", "$x=2+1=\\frac{1}{3}\\approx 5$", true),
            ("$\\pi$", "$\\pi \\approx 3.14$", true),
            ("$3.14$", "$\\pi \\approx 3.14$", true),
        ],
    );
}

/// One-variable inequalities compare as the sets they describe: negated, linear, and
/// bounds on an absolute value.
#[test]
fn relations_up_to_equivalence() {
    check(
        "5 relations up to equivalence",
        &[
            ("y < 4", "$-y > -4$", true),
            ("y < 4", "$-y > 4$", false),
            ("y \\le 4", "$-y \\ge -4$", true),
            ("y \\le 4", "$-y > -4$", false),
            ("t \\in [-5,-2] \\cup [2,5]", "$2 \\le |t| \\le 5$", true),
            ("[-5,-2] \\cup [2,5]", "$2 \\le |t| \\le 5$", true),
            ("t \\in [-5,-2] \\cup [2,5]", "$2 < |t| \\le 5$", false),
            ("(-3, 3)", "$|x| < 3$", true),
            ("(-\\infty,-2) \\cup (2,\\infty)", "$|x| > 2$", true),
            ("[-1, 3]", "$|x-1| \\le 2$", true),
            ("x > 2", "$2x - 4 > 0$", true),
            ("x > 2", "$3 < 2x - 1$", true),
            ("x \\ge -2", "$4 - 2x \\le 8$", true),
            ("(-2, 2)", "$-3 < 2x+1 < 5$", true),
            ("x < 4", "$x > 4$", false),
            ("$x \\ge 3$", "$x \\geq 3$ is the answer", true),
            ("$x \\ne 3$", "$x \\neq 3$", true),
            ("$x < 1$", "$-x > -1$", true),
            ("$x < 1$", "$x > -1$", false),
            ("$(-\\infty, 3]$", "$3 \\ge x$", true),
            ("$x > 2$", "$x^2 > 4$", false),
            ("$[-2, 7]$", "$x \\in [-2,7]$", true),
            ("$-2 \\le x \\le 7$", "$x \\in [-2,7]$", true),
            ("$f(x) > 3$", "$f(x) > 3$", true),
        ],
    );
}

/// `pmatrix`, `bmatrix`, `vmatrix`, `array`, `\\left[ … \\right]` matrices with equal entries
/// are equal; sums and products of literal matrices are evaluated.
#[test]
fn matrices_in_every_notation() {
    check(
        "6 matrices",
        &[
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "$\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}$",
                true,
            ),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "$\\begin{bmatrix} 1 & 2 \\\\ 4 & 3 \\end{bmatrix}$",
                false,
            ),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "$\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]$",
                true,
            ),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "\\[\\left[\\begin{array}{rr} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]\\]",
                true,
            ),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "$\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}$",
                true,
            ),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "$\\left[ \\begin{matrix} 1 & 2 \\\\ 3 & 4 \\end{matrix} \\right]$",
                true,
            ),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "The matrix is $\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$.",
                true,
            ),
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "\\[ M = \\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix} \\]",
                true,
            ),
            (
                "\\begin{pmatrix} \\frac{1}{2} & 0 \\\\ 0 & 1 \\end{pmatrix}",
                "$\\begin{pmatrix} 0.5 & 0 \\\\ 0 & 1 \\end{pmatrix}$",
                true,
            ),
            (
                "\\begin{pmatrix} 2 & 2 \\\\ 3 & 5 \\end{pmatrix}",
                "$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix} + \\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}$",
                true,
            ),
            (
                "\\begin{pmatrix} 2 & 4 \\\\ 6 & 8 \\end{pmatrix}",
                "$2\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$",
                true,
            ),
            (
                "\\begin{pmatrix} 7 & 10 \\\\ 15 & 22 \\end{pmatrix}",
                "$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$",
                true,
            ),
            (
                "\\begin{pmatrix} 7 & 10 \\\\ 15 & 21 \\end{pmatrix}",
                "$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$",
                false,
            ),
            (
                "\\begin{pmatrix} 3 \\\\ -1 \\end{pmatrix}",
                "\\boxed{\\begin{pmatrix} 3 \\\\ -1 \\end{pmatrix}}",
                true,
            ),
            (
                "$\\begin{pmatrix}6&8\\\\10&12\\end{pmatrix}$",
                "$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}+\\begin{pmatrix}5&6\\\\7&8\\end{pmatrix}$",
                true,
            ),
            (
                "$\\begin{pmatrix}-4&-4\\\\-4&-4\\end{pmatrix}$",
                "$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}-\\begin{pmatrix}5&6\\\\7&8\\end{pmatrix}$",
                true,
            ),
            (
                "$\\begin{pmatrix}2\\\\4\\end{pmatrix}$",
                "$2\\cdot\\begin{pmatrix}1\\\\2\\end{pmatrix}$",
                true,
            ),
            (
                "$\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$",
                "The identity is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.",
                true,
            ),
            (
                "$\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}$",
                "$\\begin{pmatrix}1 & 0 \\\\ 0 & 2\\end{pmatrix}$",
                false,
            ),
            (
                "$\\begin{pmatrix} 3 \\\\ 1 \\end{pmatrix}$",
                "$(3, 1)$",
                true,
            ),
        ],
    );
}

/// Lists of tuples are sets; assignments list solutions; a set and a tuple meet as in
/// Math-Verify (a set gold takes a tuple in any order, a tuple gold a set in written order).
#[test]
fn sets_tuples_and_assignments() {
    check(
        "7 sets, tuples, assignments",
        &[
            ("(2,5),(5,2),(1,1)", "$(1, 1), (5, 2), (2, 5)$", true),
            ("(2,5),(5,2),(1,1)", "$(1, 1), (5, 2)$", false),
            (
                "(2,5),(5,2),(1,1)",
                "The pairs are (1, 1), (5, 2), (2, 5).",
                true,
            ),
            ("(2,5),(5,2)", "$a=2,b=5;a=5,b=2$", true),
            ("(2,5),(5,2)", "$a=2,b=5;a=5,b=3$", false),
            ("(2,5),(5,2)", "$a=2, b=5$ or $a=5, b=2$", true),
            ("(2,5)", "$x=2, y=5$", true),
            ("(2,5)", "$x=5, y=2$", false),
            ("\\{1,3\\}", "$(3,1)$", true),
            ("\\{1,3\\}", "$(1,3)$", true),
            ("(1,3)", "$1, 3$", true),
            ("(1,3)", "$\\{1,3\\}$", true),
            ("(1,3)", "$\\{3,1\\}$", false),
            ("\\{1,3\\}", "$[1,3]$", false),
            ("\\{1,2,3\\}", "$(1,2,3)$", true),
            ("\\{1, 2, 3\\}", "$\\{3, 2, 1\\}$", true),
            ("\\{1,3\\}", "$\\{1,3,5\\}$", false),
            ("(1,2,3)", "$\\{3,2,1\\}$", false),
            ("$\\pm 3$", "$\\{-3, 3\\}$", true),
            ("$\\pm 3$", "${-3, 3}$", true),
            ("$\\pm 3$", "$3$", false),
            ("$(3,1)$", "${1,3}$", false),
            ("$(1,3)$", "${1,3}$", true),
            ("$x = 3, y = 1$", "$(3, 1)$", true),
            ("$x = 3, y = 1$", "$(1, 3)$", false),
            ("$(1,2), (3,4)$", "$x=3, y=4$ or $x=1, y=2$", true),
        ],
    );
}

/// `a:b` is the ratio `a/b`; a labelled ratio gold names its value.
#[test]
fn ratios() {
    check(
        "8 ratios",
        &[
            ("3:8", "$3:8$", true),
            ("3:8", "The ratio is $6:16$.", true),
            ("3:8", "$\\frac{3}{8}$", true),
            ("3:8", "$8:3$", false),
            ("A_1:A_2=3:8", "$3:8$", true),
            ("A_1:A_2=3:8", "\\boxed{3:7}", false),
            ("\\frac{3}{8}", "\\boxed{3 : 8}", true),
            ("2:1", "$AM:MB = 2:1$", true),
            ("$2:3$", "The ratio is 2:3.", true),
            ("$AB:BC = 2:3$", "\\boxed{\\frac{2}{3}}", true),
            ("$2:3$", "\\boxed{3:2}", false),
        ],
    );
}

/// Several boxes listed in one sentence are one set, for golds and responses alike.
#[test]
fn several_boxes_and_sets() {
    check(
        "9 several boxes against sets",
        &[
            ("\\{2, 4\\}", "So $\\boxed{2}, \\boxed{4}$.", true),
            ("\\{2, 4\\}", "So $\\boxed{2}$ and $\\boxed{4}$.", true),
            ("\\{2, 4\\}", "So $\\boxed{2}$.", false),
            (
                "\\boxed{2} cats and \\boxed{4} dogs",
                "$\\boxed{2,4}$",
                true,
            ),
            (
                "\\boxed{2} cats and \\boxed{4} dogs",
                "$\\boxed{2,5}$",
                false,
            ),
            ("\\boxed{2}, \\boxed{4}", "$\\{2, 4\\}$", true),
            ("\\boxed{2}, \\boxed{4}", "$\\{4, 2\\}$", true),
            ("\\boxed{2}, \\boxed{4}", "\\boxed{\\{2, 4\\}}", true),
            ("\\boxed{2}, \\boxed{4}", "$\\{2, 5\\}$", false),
            ("\\boxed{2}, \\boxed{4}", "$2, 4$", true),
            ("\\boxed{2} and \\boxed{4}", "$\\{2, 4\\}$", true),
            ("{2, 4}", "$\\{2, 4\\}$", true),
            ("\\{2, 4\\}", "$\\boxed{{2, 4}}$", true),
            (
                "5",
                "so $\\boxed{5}$ is the answer, i.e. $\\boxed{5}$",
                true,
            ),
            ("$\\boxed{3}\\boxed{7}$", "$\\boxed{3, 7}$", true),
            (
                "$5$",
                "First we try $\\boxed{3}$, but that fails. So $\\boxed{5}$.",
                true,
            ),
            (
                "$5$",
                "The answer is not $\\boxed{3}$ but $\\boxed{5}$.",
                true,
            ),
        ],
    );
}

/// A gold `name = value` equals its value: `|PQ| = 6`, `P:Q = 6`, `\\overline{AB} = 5`.
#[test]
fn named_golds() {
    check(
        "10 named golds",
        &[
            ("|PQ|=6", "6", true),
            ("|PQ|=6", "\\boxed{6}", true),
            ("|PQ|=6", "\\boxed{7}", false),
            ("P:Q=6", "6", true),
            ("P:Q=6", "\\boxed{5}", false),
            ("\\overline{AB}=5", "\\boxed{5}", true),
            ("AB = 5", "the length is $5$", true),
            ("$\\angle ABC = 40^\\circ$", "\\boxed{40}", true),
            ("$|AB| = 5$", "\\boxed{5}", true),
            ("$x_1 = 3$", "\\boxed{3}", true),
        ],
    );
}

/// Inline math broken over lines is not an environment, nor is its text a plain answer.
#[test]
fn not_answers() {
    check(
        "11 not answers",
        &[
            ("9", "Answer $ \n 9 \n $", false),
            ("9", "Answer \\( \n 9 \n \\)", false),
            ("9", "Answer \\[ \n 9 \n \\]", true),
            ("9", "Answer $$ \n 9 \n $$", true),
            ("9", "Answer $ 9 $", true),
            ("9", "Answer $ 9\n $", false),
            (
                "120",
                "He paid 20 $ for lunch.\nAfter that he still has 120$",
                true,
            ),
            (
                "20",
                "He paid 20 $ for lunch.\nAfter that he still has 120$",
                false,
            ),
            ("$4$", "So we get $ 4 \\\\ 5 $ hmm", false),
            (
                "$12$",
                "He paid $5 for lunch.\nThen he paid $12 for dinner.",
                true,
            ),
            (
                "$17$",
                "costs $5 per hour.\nHe works 3 hours so it is $15 plus 2, or 17 total",
                true,
            ),
        ],
    );
}

/// Named equations compare with their partners, in any arrangement.
#[test]
fn equation_pairs() {
    check(
        "12 equation pairs",
        &[
            (
                "y_1 = x^2-2x+1, y_2 = x^2+2x+1",
                "$\\boxed{y_1=(x-1)^2}, \\boxed{y_2=(x+1)^2}$",
                true,
            ),
            (
                "y_1 = x^2-2x+1, y_2 = x^2+2x+1",
                "$\\boxed{y_2=(x+1)^2}$ and $\\boxed{y_1=(x-1)^2}$",
                true,
            ),
            (
                "y_1 = x^2-2x+1, y_2 = x^2+2x+1",
                "$\\boxed{y_1=(x+1)^2}, \\boxed{y_2=(x-1)^2}$",
                false,
            ),
            (
                "y_1 = x^2-2x+1, y_2 = x^2+2x+1",
                "$\\boxed{y_1=(x-1)^2}$",
                false,
            ),
            (
                "y_1 = x^2-2x+1, y_2 = x^2+2x+1",
                "$y_1=(x-1)^2, y_2=(x+1)^2$",
                true,
            ),
            ("$y = 2x + 1$", "$\\boxed{2x - y + 1 = 0}$", true),
            (
                "$y_1 = x^2 + 2x + 1, y_2 = x^2 - 1$",
                "$\\boxed{y_1 = (x+1)^2}$ and $\\boxed{y_2 = (x-1)(x+1)}$",
                true,
            ),
            (
                "$y_1 = x^2 + 2x + 1, y_2 = x^2 - 1$",
                "$\\boxed{y_1 - 1 = x^2 + 2x}$ and $\\boxed{y_2 + 1 = x^2}$",
                true,
            ),
            (
                "$y_1 = x^2 + 2x + 1, y_2 = x^2 - 1$",
                "$\\boxed{(x+1)^2 = y_1}$, $\\boxed{(x-1)(x+1) = y_2}$",
                true,
            ),
            (
                "$y_1 = x^2 + 2x + 1, y_2 = x^2 - 1$",
                "$\\boxed{y_2 = (x+1)^2}$ and $\\boxed{y_1 = (x-1)(x+1)}$",
                false,
            ),
            (
                "$y_1 = x^2 + 2x + 1$ and $y_2 = x^2 - 1$",
                "$y_1=(x+1)^2, \\quad y_2=(x-1)(x+1)$",
                true,
            ),
            (
                "$y_1 = x^2 + 2x + 1, y_2 = x^2 - 1$",
                "\\[ y_1 = (x+1)^2 \\] and \\[ y_2 = (x+1)(x-1) \\]",
                true,
            ),
        ],
    );
}
