"""hicra.analysis.analyze on TRL completion logs: a Parquet file written with pyarrow in
TRL's column layout (conversational prompts), and the logs of a real tiny TRL GRPO run on the
CPU; the rows are checked against values computed here from the same files."""

from __future__ import annotations

import json
import subprocess

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from hicra.analysis import analyze  # noqa: E402

G = 4
QUESTIONS = ["What is 2 + 2?", "What is 3 * 5?"]
ANSWERS = [
    ["Wait, 2 + 2 = \\boxed{4}", "Let me see: \\boxed{22}", "So the answer is \\boxed{4}", "\\boxed{5}"],
    ["First, 3 * 5 = \\boxed{15}", "Alternatively \\boxed{8}", "\\boxed{15}", "Let me check: \\boxed{35}"],
]
GOLD = ["4", "15"]


def write_trl_parquet(folder, step):
    """A completions file as TRL 1.16 logs it: step, prompt (chat), completion (chat), one
    column per reward function, an extra column, advantage."""
    prompts, completions, accuracy, fmt, answer = [], [], [], [], []
    for q, question in enumerate(QUESTIONS):
        for text in ANSWERS[q]:
            prompts.append([{"role": "user", "content": question}])
            completions.append([{"role": "assistant", "content": text}])
            accuracy.append(1.0 if text.endswith("{" + GOLD[q] + "}") else 0.0)
            fmt.append(0.25)
            answer.append(GOLD[q])
    table = pa.table(
        {
            "step": [step] * len(prompts),
            "prompt": prompts,
            "completion": completions,
            "accuracy_reward": accuracy,
            "format_reward": fmt,
            "answer": answer,
            "advantage": [0.0] * len(prompts),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"completions_{step:05d}.parquet")
    return table.to_pylist()


def test_trl_layout_written_with_pyarrow(tmp_path):
    rows = {step: write_trl_parquet(tmp_path / "completions", step) for step in (1, 2)}
    result = analyze(tmp_path, as_frame=False)
    (run,) = result["runs"]
    assert run["format"] == "trl"
    assert [r["step"] for r in run["train"]] == [1, 2]
    for r in run["train"]:
        logged = rows[r["step"]]
        assert r["n"] == len(logged)
        assert r["groups"] == len(QUESTIONS)
        want = sum(x["accuracy_reward"] + x["format_reward"] for x in logged) / len(logged)
        assert r["reward_mean"] == pytest.approx(want, rel=1e-12)
        assert r["accuracy"] is None, "no verdict column: accuracy is not guessed"
        words = sum(len(x["completion"][0]["content"].split()) for x in logged) / len(logged)
        assert r["response_length_mean"] == pytest.approx(words, rel=1e-12)

    graded = analyze(tmp_path, regrade=True, as_frame=False)["runs"][0]["train"][0]
    want = sum(x["accuracy_reward"] for x in rows[1]) / len(rows[1])
    assert graded["accuracy"] == pytest.approx(want, rel=1e-12)
    assert set(graded["pass_at_k"]) == {"1", "2", "4"}


def test_data_frame_when_pandas_is_installed(tmp_path):
    pd = pytest.importorskip("pandas")
    write_trl_parquet(tmp_path / "completions", 3)
    frame = analyze(tmp_path, regrade=True)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["step"]) == [3] and list(frame["split"]) == ["train"]
    assert "pass_at_1" in frame.columns and "semantic_entropy" in frame.columns
    assert frame.attrs["analysis"]["runs"][0]["format"] == "trl"


def test_unreadable_path_names_every_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ValueError) as err:
        analyze(tmp_path, as_frame=False)
    for name in ("hicra:", "verl:", "trl:", "jsonl:"):
        assert name in str(err.value)


def test_strict_raises_at_the_first_bad_line(tmp_path):
    path = tmp_path / "run.jsonl"
    good = {"step": 0, "prompt": "p", "response": "Wait, 4", "reward": 1.0}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"step": 0, "prompt": "p"}) + "\n")
    (run,) = analyze(path, as_frame=False)["runs"]
    assert run["bad_records"] == 1 and f"{path}:2" in run["problems"][0]
    with pytest.raises(ValueError, match=f"{path}:2"):
        analyze(path, strict=True, as_frame=False)


def test_a_real_tiny_trl_run(tmp_path, hicra_bin):
    pytest.importorskip("torch")
    pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from tiny_grpo import PROMPTS, TWO_CPU_STEPS, write_tiny_model
    from trl import GRPOConfig, GRPOTrainer

    from hicra.rewards import math_reward

    model_dir = tmp_path / "model"
    tok = write_tiny_model(model_dir)

    def reward(prompts, completions, answer, **kwargs):
        return math_reward(prompts, completions, answer, **kwargs)

    reward.__name__ = "math_reward"
    out = tmp_path / "out"
    args = GRPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=8,
        num_generations=G,
        log_completions=True,
        **TWO_CPU_STEPS,
    )
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=reward,
        args=args,
        train_dataset=datasets.Dataset.from_dict(PROMPTS),
        processing_class=tok,
    )
    trainer.train()
    files = sorted((out / "completions").glob("completions_*.parquet"))
    assert len(files) == 2, files

    (run,) = analyze(out, as_frame=False)["runs"]
    assert run["format"] == "trl"
    for r, file in zip(run["train"], files):
        logged = pq.read_table(file).to_pylist()
        assert r["step"] == logged[0]["step"]
        assert r["n"] == len(logged)
        assert r["groups"] == len(set(x["prompt"] for x in logged))
        want = sum(x["math_reward"] for x in logged) / len(logged)
        assert r["reward_mean"] == pytest.approx(want, rel=1e-12)

    # The command line reads the same logs to the same rows.
    subprocess.run([str(hicra_bin), "analyze", str(out), "--out", str(tmp_path / "a")], check=True)
    cli = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert cli["runs"][0]["train"] == run["train"]
