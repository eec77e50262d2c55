//! The PyTorch side of `hicra bench model --torch`: a Python process (the user's interpreter,
//! with torch and transformers) running `torch_model.py`, which loads the same Hugging Face
//! directory and times the same generation and training runs on request, one JSON line each
//! way, so hicra's runs and PyTorch's alternate in one benchmark run.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The Python program (see its docstring for the protocol).
const SCRIPT: &str = include_str!("torch_model.py");

/// A timed run on the PyTorch side.
pub struct TorchFigure {
    pub tokens: usize,
    pub seconds: f64,
}

/// A running PyTorch process.
pub struct TorchSide {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// "torch X, transformers Y".
    pub versions: String,
    /// The Python process's peak RSS (MiB) at its latest reply.
    pub peak_rss_mb: f64,
}

impl TorchSide {
    /// Starts `python` on the model directory with `threads` intra-op threads.
    pub fn start(
        python: &Path,
        model_dir: &Path,
        threads: usize,
        pad_token_id: u32,
    ) -> anyhow::Result<TorchSide> {
        let mut child = Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(model_dir)
            .arg(threads.to_string())
            .arg(pad_token_id.to_string())
            .env("OMP_NUM_THREADS", threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("--python {}: cannot start it", python.display()))?;
        let stdin = child.stdin.take().context("python stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("python stdout")?);
        let mut side = TorchSide {
            child,
            stdin,
            stdout,
            versions: String::new(),
            peak_rss_mb: 0.0,
        };
        let hello = side.read_reply().with_context(|| {
            format!(
                "--python {}: torch and transformers did not load {}",
                python.display(),
                model_dir.display()
            )
        })?;
        side.versions = format!(
            "torch {}, transformers {}",
            hello["torch"].as_str().unwrap_or("?"),
            hello["transformers"].as_str().unwrap_or("?")
        );
        Ok(side)
    }

    /// Samples `new_tokens` tokens (no early stop) for every prompt at temperature 1.
    pub fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        new_tokens: usize,
        seed: u64,
    ) -> anyhow::Result<TorchFigure> {
        self.request(serde_json::json!({
            "op": "generate", "prompts": prompts, "new_tokens": new_tokens, "seed": seed
        }))
        .with_context(|| format!("PyTorch generation at batch {}", prompts.len()))
    }

    /// Times `steps` training steps (forward, backward, AdamW) on `rows` after a warm-up step;
    /// `autocast`: forward and loss under `torch.autocast("cpu", dtype=torch.bfloat16)`.
    pub fn train(
        &mut self,
        rows: &[Vec<u32>],
        steps: usize,
        autocast: bool,
    ) -> anyhow::Result<TorchFigure> {
        self.request(serde_json::json!({
            "op": "train", "rows": rows, "steps": steps, "autocast_bf16": autocast
        }))
        .context("PyTorch training")
    }

    fn request(&mut self, req: serde_json::Value) -> anyhow::Result<TorchFigure> {
        writeln!(self.stdin, "{req}").context("writing to the Python process")?;
        self.stdin.flush()?;
        let reply = self.read_reply()?;
        Ok(TorchFigure {
            tokens: reply["tokens"].as_u64().context("reply without tokens")? as usize,
            seconds: reply["seconds"].as_f64().context("reply without seconds")?,
        })
    }

    fn read_reply(&mut self) -> anyhow::Result<serde_json::Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the Python process ended (its error is printed above)");
        }
        let reply: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("unreadable reply from Python: {line:?}"))?;
        if let Some(rss) = reply["peak_rss_mb"].as_f64() {
            self.peak_rss_mb = rss;
        }
        if let Some(err) = reply["error"].as_str() {
            bail!("{err}");
        }
        Ok(reply)
    }
}

impl Drop for TorchSide {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", serde_json::json!({"op": "quit"}));
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}
