//! Tokenizer wrapper and chat templates modelled on real ones (ChatML with tools checks,
//! Llama 3 with `strftime_now`/`namespace`/`raise_exception`, python string methods).

use hicra_model::io::tiny::test_tokenizer;
use hicra_model::{ChatMessage, ChatTemplate, Tokenizer};

#[test]
fn encode_decode_round_trip_and_offsets() {
    let tok = test_tokenizer();
    for text in [
        "Let's think step by step: 12 + 30 = 42.",
        "Ünïcödé ✓ 数学",
        "  spaces\n\nand newlines\t",
    ] {
        let ids = tok.encode(text, false).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
        let (ids2, offsets) = tok.encode_with_offsets(text).unwrap();
        assert_eq!(ids, ids2);
        assert_eq!(offsets.len(), ids.len());
        let spans = tok.token_byte_spans(&ids).unwrap();
        assert_eq!(spans.len(), ids.len());
        assert_eq!(spans.last().unwrap().1, text.len());
        for w in spans.windows(2) {
            assert_eq!(w[0].1, w[1].0, "spans are contiguous");
        }
        for (&(s, e), &id) in spans.iter().zip(&ids) {
            if e > s && text.is_char_boundary(s) && text.is_char_boundary(e) {
                let piece = tok.decode(&[id], false).unwrap();
                if !piece.contains('\u{FFFD}') {
                    assert_eq!(&text[s..e], piece);
                }
            }
        }
    }
}

#[test]
fn digit_split_bpe_keeps_numbers_as_single_digits() {
    let corpus: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "Q: {}+{} =\n7+5=12, write 2 carry 1\nanswer: {}",
                347 + i,
                285 * i,
                632 + i
            )
        })
        .collect();
    let tok = Tokenizer::train_bpe_split_digits(&corpus, 300, &["<|endoftext|>"]).unwrap();
    let plain = Tokenizer::train_bpe(&corpus, 300, &["<|endoftext|>"]).unwrap();
    let multi_digit = |t: &Tokenizer| {
        let ids = t.encode("Q: 347+285 =", false).unwrap();
        ids.iter()
            .filter(|&&id| {
                t.decode(&[id], false)
                    .unwrap()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .count()
                    > 1
            })
            .count()
    };
    assert!(
        multi_digit(&plain) > 0,
        "plain BPE merges digits on this corpus"
    );
    assert_eq!(multi_digit(&tok), 0);
    let text = "Q: 347+285 =\n7+5=12, write 2 carry 1";
    let (ids, offsets) = tok.encode_with_offsets(text).unwrap();
    assert_eq!(tok.decode(&ids, false).unwrap(), text);
    for (&id, &(s, e)) in ids.iter().zip(&offsets) {
        let piece = tok.decode(&[id], false).unwrap();
        if piece.chars().any(|c| c.is_ascii_digit()) {
            assert_eq!(
                piece.trim().len(),
                1,
                "digit token {piece:?} holds one digit"
            );
            assert_eq!(&text[s..e], piece.trim(), "offsets of {piece:?}");
        }
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let digit_tokens = ids
        .iter()
        .filter(|&&id| {
            let p = tok.decode(&[id], false).unwrap();
            p.chars().any(|c| c.is_ascii_digit())
        })
        .count();
    assert_eq!(digit_tokens, digits);
}

#[test]
fn special_tokens_are_atomic_and_skippable() {
    let tok = test_tokenizer();
    let ids = tok.encode("<|im_start|>user\nhi<|im_end|>", false).unwrap();
    assert_eq!(ids[0], tok.token_to_id("<|im_start|>").unwrap());
    assert_eq!(*ids.last().unwrap(), tok.token_to_id("<|im_end|>").unwrap());
    assert_eq!(tok.decode(&ids, true).unwrap(), "user\nhi");
    let back = Tokenizer::from_inner(tok.inner().clone());
    assert_eq!(back.to_json().unwrap(), tok.to_json().unwrap());
    assert!(tok.vocab_size() > 300);
}

/// A template in the style of Qwen2.5's (tools branch, system default, `loop.first`).
const QWEN_STYLE: &str = r#"{%- if tools %}{{- '<|im_start|>system\n' }}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{%- endif %}{%- endif %}
{%- for message in messages %}{%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endif %}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"#;

/// A template in the style of Llama 3.x's (namespace, strftime_now, raise_exception, strip).
const LLAMA_STYLE: &str = r#"{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- endif %}
{%- set ns = namespace(system="") %}{%- if messages[0]['role'] == 'system' %}{%- set ns.system = messages[0]['content']|trim %}{%- set messages = messages[1:] %}{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}{{- "Today Date: " + date_string + "\n\n" }}{{- ns.system }}{{- "<|eot_id|>" }}
{%- for message in messages %}{%- if message.role not in ['user', 'assistant'] %}{{- raise_exception("Conversation roles must be user or assistant") }}{%- endif %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'].strip() + '<|eot_id|>' }}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"#;

#[test]
fn qwen_style_template_renders() {
    let t = ChatTemplate::new(QWEN_STYLE, "", "<|im_end|>").unwrap();
    let s = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
    assert_eq!(
        s,
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn llama_style_template_renders_and_raises() {
    let t = ChatTemplate::new(LLAMA_STYLE, "<|begin_of_text|>", "<|eot_id|>").unwrap();
    let s = t
        .render(
            &[
                ChatMessage::new("system", " Be terse. "),
                ChatMessage::new("user", "  2+2?  "),
            ],
            true,
        )
        .unwrap();
    assert!(
        s.starts_with(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: "
        ),
        "{s}"
    );
    assert!(s.contains("Be terse.<|eot_id|>"), "{s}");
    assert!(s.ends_with("<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), "{s}");
    let err = t
        .render(&[ChatMessage::new("tool", "x")], true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Conversation roles must be user or assistant"),
        "{err}"
    );
}

#[test]
fn broken_template_is_an_error() {
    let err = ChatTemplate::new("{% for m in messages %}", "", "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("chat template"), "{err}");
}
