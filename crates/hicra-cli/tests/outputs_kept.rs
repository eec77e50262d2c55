//! No command deletes or replaces what it did not write: `eval` into an earlier evaluation,
//! `export` onto a directory or file of the user's, `sft` into a finished SFT, `grade` onto its
//! own input, and `eval --resume` with other data or another model are refused by name (with
//! how to resume or overwrite); temporaries of killed writers are removed by the next run.

mod common;

use std::path::Path;

use common::{chat_model, ok, refused, run, s, tree, write_problems};

fn eval_args<'a>(model: &'a str, data: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        "--model",
        model,
        "--dataset",
        data,
        "--max-new-tokens",
        "4",
        "--batch-size",
        "4",
    ]
}

#[test]
fn eval_never_replaces_an_earlier_evaluation() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    chat_model(&a, 1);
    chat_model(&b, 2);
    let data = d.path().join("bench.jsonl");
    write_problems(&data, 3);
    let out = d.path().join("out");
    let with_out = |model: &Path, extra: &[&str]| {
        let mut args = eval_args(s(model), s(&data));
        args.extend(["--out", s(&out)]);
        args.extend(extra);
        run(&args)
    };
    ok(with_out(&a, &[]));
    let first = tree(&out);
    let err = refused(with_out(&b, &[]));
    assert!(err.contains("already holds a finished evaluation") && err.contains("--force"));
    assert_eq!(tree(&out), first, "the first model's results are untouched");
    ok(with_out(&b, &["--force"]));
    assert_ne!(tree(&out), first);

    // Without --out, each model (and each setting) gets its own directory.
    for model in [&a, &b] {
        let o = common::hicra()
            .args(eval_args(s(model), s(&data)))
            .current_dir(d.path())
            .output()
            .unwrap();
        ok(o);
    }
    let dirs = std::fs::read_dir(d.path().join("eval")).unwrap().count();
    assert_eq!(dirs, 2, "one default directory per model");
}

#[test]
fn eval_resume_refuses_other_data_or_another_model_by_name() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    chat_model(&model, 1);
    let data = d.path().join("bench.jsonl");
    write_problems(&data, 3);
    let out = d.path().join("out");
    let mut args = eval_args(s(&model), s(&data));
    args.extend(["--out", s(&out)]);
    ok(run(&args));
    let resume = |data_path: &Path, model_path: &Path| {
        let mut a = eval_args(s(model_path), s(data_path));
        a.extend(["--out", s(&out), "--resume"]);
        run(&a)
    };
    // Same name, same size, other content.
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, text.replace("plus 1?", "plus 7?")).unwrap();
    let err = refused(resume(&data, &model));
    assert!(err.contains("data_sha256"), "{err}");
    std::fs::write(&data, text).unwrap();
    // The same model path with other weights.
    chat_model(&model, 2);
    let err = refused(resume(&data, &model));
    assert!(err.contains("model_sha256"), "{err}");
    chat_model(&model, 1);
    ok(resume(&data, &model));
}

#[test]
fn export_touches_no_file_it_did_not_write() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    chat_model(&model, 1);
    let export = |out: &Path, force: bool| {
        let mut args = vec!["export", "--model", s(&model), "--out", s(out)];
        if force {
            args.push("--force");
        }
        run(&args)
    };
    // A directory of the user's.
    let mine = d.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    std::fs::write(mine.join("config.json"), "{\"mine\": 1}").unwrap();
    let err = refused(export(&mine, false));
    assert!(
        err.contains("notes.txt") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("config.json")).unwrap(),
        "{\"mine\": 1}"
    );
    // --force writes the export's files among the user's and leaves the others alone.
    ok(export(&mine, true));
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert!(mine.join("model.safetensors").is_file());
    // A regular file is never replaced, forced or not.
    let file = d.path().join("file");
    std::fs::write(&file, "data").unwrap();
    for force in [false, true] {
        let err = refused(export(&file, force));
        assert!(err.contains("is a file"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
    // A previous export is replaced, leaving no temporaries beside it.
    let out = d.path().join("out");
    ok(export(&out, false));
    ok(export(&out, false));
    assert!(common::temporaries(d.path()).is_empty());
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".old")), "{names:?}");
}

fn sft_config(dir: &Path, model: &Path) -> std::path::PathBuf {
    let data = dir.join("sft.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"The answer is\", \"completion\": \" 7.\"}\n\
         {\"prompt\": \"Hello,\", \"completion\": \" world!\"}\n",
    )
    .unwrap();
    let cfg = dir.join("sft.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\npath = \"{}\"\n[sft]\ndata = \"{}\"\nsteps = 2\nbatch_size = 2\n\
             lr = 0.01\nwarmup_steps = 0\nlog_every = 1\n",
            model.display(),
            data.display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn sft_refuses_a_finished_sft_and_force_redoes_it_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    chat_model(&model, 1);
    let cfg = sft_config(d.path(), &model);
    let out = d.path().join("out");
    let sft = |extra: &[&str]| {
        let mut args = vec!["sft", "--config", s(&cfg), "--out", s(&out)];
        args.extend(extra);
        run(&args)
    };
    ok(sft(&[]));
    let first = tree(&out);
    let err = refused(sft(&[]));
    assert!(
        err.contains("already holds") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(tree(&out), first);
    ok(sft(&["--force"]));
    let steps: Vec<u64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [1, 2], "the redone SFT's metrics alone");
    // A directory of the user's is refused, forced or not.
    let mine = d.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["sft", "--config", s(&cfg), "--out", s(&mine)];
        args.extend(extra);
        assert!(refused(run(&args)).contains("notes.txt"));
    }
}

#[test]
fn grade_never_writes_over_its_input() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("pairs.jsonl");
    let text = "{\"gold\": \"2\", \"response\": \"\\\\boxed{2}\"}\n";
    std::fs::write(&input, text).unwrap();
    let link = d.path().join("link.jsonl");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = d.path().join("hard.jsonl");
    std::fs::hard_link(&input, &hard).unwrap();
    for output in [&input, &link, &hard] {
        for force in [false, true] {
            let mut args = vec!["grade", "--input", s(&input), "--output", s(output)];
            if force {
                args.push("--force");
            }
            let err = refused(run(&args));
            assert!(err.contains("is the input file"), "{err}");
        }
    }
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    // Another existing file needs --force.
    let other = d.path().join("graded.jsonl");
    std::fs::write(&other, "mine").unwrap();
    let err = refused(run(&["grade", "--input", s(&input), "--output", s(&other)]));
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "mine");
    ok(run(&[
        "grade",
        "--input",
        s(&input),
        "--output",
        s(&other),
        "--force",
    ]));
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("\"correct\":true")
    );
}

#[test]
fn temporaries_of_killed_writers_are_removed_by_the_next_run() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    chat_model(&model, 1);
    // A process id no system hands out (above the Linux maximum of 2^22): a dead writer.
    let stale = |dir: &Path, name: &str| {
        let p = dir.join(format!(".{name}.4999999-0.hicra-tmp"));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("model.safetensors"), vec![0u8; 1000]).unwrap();
        p
    };
    // export: beside its target (with the names older versions used), and nothing else.
    let out = d.path().join("out");
    let left = [
        stale(d.path(), "out"),
        d.path().join(".out.tmp-4999999-12345"),
        d.path().join(".out.tmp-4999999-12345.old"),
    ];
    std::fs::create_dir_all(&left[1]).unwrap();
    std::fs::create_dir_all(&left[2]).unwrap();
    let unrelated = stale(d.path(), "other");
    ok(run(&["export", "--model", s(&model), "--out", s(&out)]));
    assert!(
        left.iter().all(|p| !p.exists()),
        "stale export temporaries removed"
    );
    assert!(
        unrelated.exists(),
        "another target's temporaries are not ours to remove"
    );

    // eval: in its output directory.
    let data = d.path().join("bench.jsonl");
    write_problems(&data, 2);
    let eval_out = d.path().join("eval");
    let mut args = eval_args(s(&model), s(&data));
    args.extend(["--out", s(&eval_out)]);
    ok(run(&args));
    let left = stale(&eval_out, "summary.json");
    args.push("--resume");
    ok(run(&args));
    assert!(!left.exists());

    // train: in the run directory and its checkpoints (the older checkpoint name too).
    let cfg = common::tiny_arith_config(d.path(), s(&model), 4, 8, "steps = 1\nval_size = 2");
    let run_dir = d.path().join("run");
    ok(run(&["train", "--config", s(&cfg), "--out", s(&run_dir)]));
    let ck = run_dir.join("checkpoints");
    let left = [stale(&ck, "step-2"), ck.join(".tmp-step-2-4999999")];
    std::fs::create_dir_all(&left[1]).unwrap();
    let edited = std::fs::read_to_string(run_dir.join("config.toml"))
        .unwrap()
        .replace("steps = 1", "steps = 2");
    std::fs::write(run_dir.join("config.toml"), edited).unwrap();
    ok(run(&["train", "--resume", s(&run_dir)]));
    assert!(left.iter().all(|p| !p.exists()));
    assert!(
        common::temporaries(d.path())
            .iter()
            .all(|p| p == &unrelated)
    );
}
