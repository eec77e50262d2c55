//! Shared by the tests that need the fetched SmolLM2-135M-Instruct GGUF: finds it in the models
//! directory, or fails with the fetch command (or skips loudly when HICRA_SKIP_REAL_MODELS=1).

use std::path::PathBuf;

/// The fetched SmolLM2 GGUF, or `None` (after a loud message) when real-model tests are skipped.
pub fn smollm2_gguf() -> Option<PathBuf> {
    match hicra_model::io::registry::resolve_model_path("smollm2-135m-instruct") {
        Ok(path) => Some(path),
        Err(err) => {
            if std::env::var("HICRA_SKIP_REAL_MODELS").is_ok_and(|v| v == "1") {
                eprintln!(
                    "\n!!!!!!!! SKIPPED: SmolLM2-135M-Instruct is not fetched ({err}); \
                     HICRA_SKIP_REAL_MODELS=1 is set !!!!!!!!\n"
                );
                None
            } else {
                panic!(
                    "this test needs SmolLM2-135M-Instruct: run `hicra models fetch smollm2-135m-instruct` \
                     first (or set HICRA_SKIP_REAL_MODELS=1 to skip real-model tests). Error: {err}"
                );
            }
        }
    }
}
