//! What the report says in words about each run: the reading of its phase (from its series,
//! the same heuristic as `hicra analyze`), and for analysed runs the Strategic Grams that rose
//! and fell, the last step's pass@k, and the analysis's notes.

use std::fmt::Write as _;

use hicra_rl::analysis::movers::GramMove;
use hicra_rl::analysis::reading::read_phase;

use super::html::escape;
use super::run_data::RunData;

fn mover_rows(moves: &[GramMove]) -> String {
    moves
        .iter()
        .map(|m| {
            format!(
                "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:+.3}</td></tr>",
                escape(&m.gram),
                m.early_share,
                m.late_share,
                m.change
            )
        })
        .collect()
}

/// The findings section of the page.
pub fn render(runs: &[RunData]) -> String {
    let mut page = String::from("<h2 id=\"reading\">Reading</h2>\n");
    for run in runs {
        let reading = read_phase(&|name| run.series(name));
        let _ = writeln!(
            page,
            "<h3>{}</h3>\n<p>{}</p>",
            escape(&run.label),
            escape(&reading.text)
        );
        let Some(analysis) = &run.analysis else {
            continue;
        };
        if let Some(m) = &analysis.gram_movers {
            let _ = writeln!(
                page,
                "<p>Strategic Grams whose share of occurrences moved most between steps {}–{} and {}–{}:</p>\
                 <table><tr><th>rising</th><th>early</th><th>late</th><th>change</th></tr>{}</table>\
                 <table><tr><th>falling</th><th>early</th><th>late</th><th>change</th></tr>{}</table>",
                m.early_steps[0],
                m.early_steps[1],
                m.late_steps[0],
                m.late_steps[1],
                mover_rows(&m.rising),
                mover_rows(&m.falling)
            );
        }
        let last = analysis.val.last().or(analysis.train.last());
        if let Some(row) = last.filter(|r| !r.pass_at_k.is_empty()) {
            let pass: Vec<String> = row
                .pass_at_k
                .iter()
                .map(|(k, v)| format!("pass@{k} {v:.3}"))
                .collect();
            let _ = writeln!(
                page,
                "<p>Step {} ({}): {}.</p>",
                row.step,
                if analysis.val.is_empty() {
                    "rollouts"
                } else {
                    "validation"
                },
                pass.join(", ")
            );
        }
        let _ = writeln!(
            page,
            "<p><small>Format {}; lengths in {}; accuracy from {}; grams: {}; {} unreadable records.</small></p>",
            analysis.format.name(),
            escape(&analysis.units.response_length),
            escape(
                analysis
                    .accuracy_source
                    .as_deref()
                    .unwrap_or("nowhere (no verdict logged)")
            ),
            escape(&analysis.grams),
            analysis.bad_records
        );
        for note in &analysis.notes {
            let _ = writeln!(page, "<p><em>{}</em></p>", escape(note));
        }
    }
    page
}
