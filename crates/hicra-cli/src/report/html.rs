//! The report page: HTML escaping, highlighted sample responses and the page layout.

use std::fmt::Write as _;

use hicra_hier::GramSet;
use hicra_hier::gram_set::merged_spans;

use super::run_data::{RunData, Sample};

/// Responses shown per sample file.
pub const SAMPLES_PER_STEP: usize = 6;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The planning spans of a sample: its own `planning_spans` when they are valid byte
/// ranges on character boundaries, else the matches of `grams`; merged and sorted.
pub fn planning_spans(sample: &Sample, grams: &GramSet) -> Vec<(usize, usize)> {
    let text = &sample.response;
    let valid = |&(s, e): &(usize, usize)| {
        s <= e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e)
    };
    match &sample.planning_spans {
        Some(spans) if spans.iter().all(valid) => {
            let matches: Vec<hicra_hier::GramMatch> = spans
                .iter()
                .map(|&(start, end)| hicra_hier::GramMatch {
                    start,
                    end,
                    gram: 0,
                })
                .collect();
            merged_spans(&matches)
        }
        _ => merged_spans(&grams.find(text)),
    }
}

/// The response as HTML with planning spans inside `<mark>`.
pub fn highlight(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &(start, end) in spans {
        if start < at {
            continue;
        }
        out.push_str(&escape(&text[at..start]));
        out.push_str("<mark>");
        out.push_str(&escape(&text[start..end]));
        out.push_str("</mark>");
        at = end;
    }
    out.push_str(&escape(&text[at..]));
    out
}

/// A chart on the page.
pub struct ChartRef {
    /// File name beside `report.html`.
    pub file: String,
    /// Caption.
    pub caption: String,
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}\
pre{white-space:pre-wrap;background:#f7f7f7;padding:.6em;border-radius:4px}\
mark{background:#ffd54f}.ok{color:#2e7d32}.bad{color:#c62828}";

/// The last value of a metric in a run, formatted, or "–".
fn last_value(run: &RunData, metric: &str) -> String {
    run.series(metric)
        .last()
        .map_or_else(|| "–".to_string(), |&(_, v)| format!("{v:.4}"))
}

/// Writes the whole page (`findings`: the rendered reading and gram-mover section).
pub fn render_page(
    runs: &[RunData],
    charts: &[ChartRef],
    notes: &[String],
    findings: &str,
    grams: &GramSet,
) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hicra report</title>\
         <style>{STYLE}</style></head><body>\n<h1>Two-phase dynamics report</h1>\n"
    );
    page.push_str(
        "<h2>Runs</h2>\n<table><tr><th>label</th><th>directory</th><th>metrics lines</th>\
         <th>last step</th><th>last val_accuracy</th><th>last semantic_entropy</th></tr>\n",
    );
    for run in runs {
        let last_step = run
            .metrics
            .iter()
            .map(|l| l.step)
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&run.label),
            escape(&run.dir.display().to_string()),
            run.metrics.len(),
            last_step.map_or_else(|| "–".to_string(), |s| s.to_string()),
            last_value(run, "val_accuracy"),
            last_value(run, "semantic_entropy"),
        );
    }
    page.push_str("</table>\n");
    for note in notes {
        let _ = writeln!(page, "<p><em>{}</em></p>", escape(note));
    }
    page.push_str("<h2>Dynamics</h2>\n");
    for chart in charts {
        let _ = writeln!(
            page,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            escape(&chart.file),
            escape(&chart.caption),
            escape(&chart.caption)
        );
    }
    page.push_str(findings);
    page.push_str("<h2 id=\"samples\">Sample responses</h2>\n<p>Planning tokens (Strategic-Gram matches) are <mark>highlighted</mark>.</p>\n");
    for run in runs {
        let _ = writeln!(page, "<h3>{}</h3>", escape(&run.label));
        if run.samples.is_empty() {
            page.push_str("<p>No <code>samples/step-N.jsonl</code> files in this run.</p>\n");
            continue;
        }
        let first = run.samples.first();
        let last = run.samples.last();
        let shown: Vec<_> = if run.samples.len() > 1 {
            [first, last].into_iter().flatten().collect()
        } else {
            first.into_iter().collect()
        };
        for step in shown {
            let _ = writeln!(
                page,
                "<h4>step {} <small>({})</small></h4>",
                step.step,
                escape(&step.path.display().to_string())
            );
            for sample in step.samples.iter().take(SAMPLES_PER_STEP) {
                let verdict = match sample.correct {
                    Some(true) => "<span class=\"ok\">correct</span>",
                    Some(false) => "<span class=\"bad\">wrong</span>",
                    None => "",
                };
                let reward = sample
                    .reward
                    .map_or_else(String::new, |r| format!("reward {r}"));
                let _ = writeln!(
                    page,
                    "<details><summary>{} {} {}</summary><pre>{}</pre></details>\n<pre>{}</pre>",
                    escape(&truncate(&sample.prompt, 120)),
                    verdict,
                    escape(&reward),
                    escape(&sample.prompt),
                    highlight(&sample.response, &planning_spans(sample, grams))
                );
            }
        }
    }
    page.push_str("</body></html>\n");
    page
}

fn truncate(text: &str, chars: usize) -> String {
    let one_line = text.replace('\n', " ");
    match one_line.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_highlights() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        assert_eq!(
            highlight("a <b> wait", &[(6, 10)]),
            "a &lt;b&gt; <mark>wait</mark>"
        );
    }

    #[test]
    fn invalid_planning_spans_fall_back_to_matching() {
        let grams = GramSet::from_grams(vec!["wait".into()]).unwrap();
        let sample = Sample {
            prompt: String::new(),
            response: "é wait".into(),
            reward: None,
            correct: None,
            planning_spans: Some(vec![(1, 2)]), // inside 'é'
        };
        assert_eq!(planning_spans(&sample, &grams), [(3, 7)]);
    }
}
