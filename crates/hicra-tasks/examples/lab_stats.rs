//! Prints sample lab traces and the SFT mix's statistics (answer accuracy, lengths).
//! Run: `cargo run -p hicra-tasks --example lab_stats`.

use hicra_tasks::lab::{self, LabConfig, Strategy};

fn main() {
    let config = LabConfig::default();
    let traces = lab::sft_corpus(&config, 5000);
    for t in traces.iter().take(6) {
        println!("----\n{}", t.text());
    }
    let n = traces.len() as f64;
    let share =
        |f: &dyn Fn(&lab::LabTrace) -> bool| traces.iter().filter(|t| f(t)).count() as f64 / n;
    println!("----");
    println!("correct:      {:.3}", share(&|t| t.correct));
    println!(
        "shortcut:     {:.3}",
        share(&|t| t.strategy == Strategy::Shortcut)
    );
    println!("backtracked:  {:.3}", share(&|t| t.backtracked));
    println!("with slips:   {:.3}", share(&|t| t.slips > 0));
    let chars: Vec<usize> = traces.iter().map(|t| t.text().len()).collect();
    println!(
        "chars: mean {:.1}, max {}",
        chars.iter().sum::<usize>() as f64 / n,
        chars.iter().max().unwrap_or(&0)
    );
}
