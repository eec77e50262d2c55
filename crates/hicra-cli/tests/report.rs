//! `hicra report` on synthetic run directories written by the test and on a tiny real run: the
//! HTML references charts that exist and decode as PNGs; samples are escaped and highlighted;
//! bad input gives errors naming the file and line.

mod common;

use std::path::Path;
use std::process::Command;

fn hicra() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hicra"))
}

/// Writes a run with `steps` training lines, validation lines every 2 steps, and samples.
fn write_run(dir: &Path, method: &str, seed: u64, steps: usize, drift: f64) {
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("seed = {seed}\n[rl]\nmethod = \"{method}\"\n"),
    )
    .unwrap();
    let mut metrics = String::new();
    for step in 0..steps {
        let s = step as f64;
        let line = serde_json::json!({
            "step": step,
            "reward_mean": 0.1 * s,
            "accuracy": 0.05 * s,
            "response_length_mean": 100.0 + 3.0 * s,
            "ppl_planning": 3.0 - 0.1 * s * drift,
            "ppl_execution": 2.0 - 0.15 * s * drift,
            "token_entropy_planning": 1.2 - 0.02 * s,
            "token_entropy_execution": 0.8 - 0.05 * s,
            "semantic_entropy": 2.0 + 0.1 * s * drift,
            "conditional_entropy": 3.0,
        });
        metrics.push_str(&format!("{line}\n"));
        if step % 2 == 0 {
            let val = serde_json::json!({"step": step, "val_accuracy": 0.2 + 0.03 * s, "val_length": 120.0 + s});
            metrics.push_str(&format!("{val}\n"));
        }
    }
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    for step in [0, steps - 1] {
        let response = "Let's try <b>2+2</b> & wait, that's not right. So 4.";
        let sample = serde_json::json!({
            "step": step, "prompt": "What is <2+2>?", "response": response,
            "reward": 1.0, "correct": true, "planning_spans": [[0, 9]],
        });
        // A second sample without planning_spans: highlighted from the paper's grams.
        let other = serde_json::json!({
            "step": step, "prompt": "p", "response": "alternatively x", "reward": 0.0, "correct": false,
        });
        std::fs::write(
            dir.join("samples").join(format!("step-{step}.jsonl")),
            format!("{sample}\n{other}\n"),
        )
        .unwrap();
    }
}

fn assert_valid_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    assert!(image.width() >= 400 && image.height() >= 300);
    // Something was drawn: not every pixel is the same colour.
    let rgb = image.to_rgb8();
    let first = rgb.get_pixel(0, 0);
    assert!(
        rgb.pixels().any(|p| p != first),
        "{} is blank",
        path.display()
    );
}

/// The `src` of every `<img>` in the page.
fn image_sources(html: &str) -> Vec<String> {
    html.split("<img src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// Asserts that the page shows the paper's four panels and exactly the `extra` ones, in order.
fn assert_panels(sources: &[String], extra: &[&str]) {
    let mut expected = vec![
        "relative_ppl.png",
        "token_entropy.png",
        "semantic_entropy.png",
        "val_accuracy_length.png",
    ];
    expected.extend_from_slice(extra);
    assert_eq!(sources, expected.as_slice(), "panels on the page");
}

/// Runs `hicra report` on `runs`, writing to `out`, asserts that it succeeded, and returns the
/// page's HTML.
fn report_html(runs: &[&Path], out: &Path) -> String {
    let output = hicra()
        .arg("report")
        .args(runs)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(out.join("report.html")).unwrap()
}

#[test]
fn report_from_two_runs_references_valid_charts_and_highlights_samples() {
    let root = tempfile::tempdir().unwrap();
    let grpo = root.path().join("grpo-1");
    let hicra_run = root.path().join("hicra-1");
    write_run(&grpo, "grpo", 1, 8, 1.0);
    write_run(&hicra_run, "hicra", 1, 6, 2.0);
    let out = root.path().join("report");
    let html = report_html(&[&grpo, &hicra_run], &out);
    let sources = image_sources(&html);
    // The runs log validation accuracy and length, not group signal.
    assert_panels(&sources, &["accuracy_length.png"]);
    for source in &sources {
        assert_valid_png(&out.join(source));
    }
    // Legend labels come from config.toml (method + seed).
    assert!(html.contains("grpo seed 1") && html.contains("hicra seed 1"));
    // Sample text is escaped and planning spans are highlighted.
    assert!(html.contains("<mark>Let&#39;s try</mark> &lt;b&gt;2+2&lt;/b&gt; &amp;"));
    assert!(html.contains("What is &lt;2+2&gt;?"));
    assert!(!html.contains("<b>2+2</b>"));
    assert!(html.contains("<mark>alternatively</mark> x"));
}

#[test]
fn report_tolerates_missing_metrics_and_samples() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("bare");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"step\": 0, \"reward_mean\": 0.5}\n\n{\"step\": 1}\n",
    )
    .unwrap();
    let output = hicra().arg("report").arg(&run).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = run.join("report");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for source in image_sources(&html) {
        assert_valid_png(&out.join(source));
    }
    assert!(html.contains("No run has the metric ppl_planning"));
    assert!(html.contains("No <code>samples/step-N.jsonl</code>"));
    assert!(html.contains("No run logs the failure anatomy"));
    assert!(!out.join("anatomy.png").exists());
}

#[test]
fn runs_with_the_failure_anatomy_get_anatomy_panels() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("lab");
    write_run(&run, "hicra", 0, 6, 1.0);
    // Append anatomy lines: rollouts every step, validation every other step.
    let mut metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for step in 0..6 {
        let s = step as f64;
        let line = serde_json::json!({
            "step": step,
            "lab_planning_error_frac": 0.2 + 0.02 * s,
            "lab_execution_error_frac": 0.4 - 0.05 * s,
            "lab_format_error_frac": 0.05,
            "lab_strategy_choice_acc": 0.6,
            "lab_backtrack_rate": 0.25,
        });
        metrics.push_str(&format!("{line}\n"));
        if step % 2 == 0 {
            let val = serde_json::json!({
                "step": step,
                "val_lab_planning_error_frac": 0.3,
                "val_lab_execution_error_frac": 0.3 - 0.04 * s,
                "val_lab_format_error_frac": 0.0,
            });
            metrics.push_str(&format!("{val}\n"));
        }
    }
    std::fs::write(run.join("metrics.jsonl"), metrics).unwrap();
    let out = root.path().join("report");
    let html = report_html(&[&run], &out);
    let sources = image_sources(&html);
    assert_panels(
        &sources,
        &[
            "accuracy_length.png",
            "anatomy.png",
            "anatomy_validation.png",
        ],
    );
    for source in &sources {
        assert_valid_png(&out.join(source));
    }
    assert!(html.contains("planning solid, execution dashed, format dotted"));
    assert!(!html.contains("No run logs the failure anatomy"));
}

#[test]
fn malformed_metrics_line_is_an_error_naming_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("broken");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"step\": 0}\n{\"step\": 1, \"kl\": \n",
    )
    .unwrap();
    let output = hicra().arg("report").arg(&run).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("metrics.jsonl:2"), "{stderr}");

    std::fs::write(run.join("metrics.jsonl"), "{\"loss\": 1.0}\n").unwrap();
    let output = hicra().arg("report").arg(&run).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("metrics.jsonl:1") && stderr.contains("step"),
        "{stderr}"
    );

    std::fs::remove_file(run.join("metrics.jsonl")).unwrap();
    let output = hicra().arg("report").arg(&run).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("metrics.jsonl"),
        "{stderr}"
    );
}

#[test]
fn report_from_a_tiny_real_training_run() {
    let root = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(root.path());
    // The trainer logged the hierarchy metrics the report draws.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.get("semantic_entropy").is_some() && l.get("ppl_execution").is_some()),
        "{metrics}"
    );
    assert!(lines.iter().any(|l| l.get("val_accuracy").is_some()));

    let out = root.path().join("report");
    let html = report_html(&[&run], &out);
    let sources = image_sources(&html);
    // A real run logs validation and the share of groups with no reward signal.
    assert_panels(&sources, &["accuracy_length.png", "group_signal.png"]);
    for source in &sources {
        assert_valid_png(&out.join(source));
    }
    // The legend names the method and seed from the resolved trainer config (HICRA's paper
    // rule is the default variant; trainer.seed defaults to 0).
    assert!(html.contains("hicra seed 0"), "legend label missing");
}
