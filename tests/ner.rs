//! Named-entity recognition: the CoNLL reader, scheme conversion, windows, metrics against
//! hand-computed cases and seqeval's definitions, CRF decoding and likelihood.

mod common;
use common::*;

use positio::data::conll;
use positio::data::tags::{detect, to_iob2, Scheme};
use positio::hf::FromCheckpoint;
use positio::model::heads::crf::{iob2_constraints, viterbi, Crf, Edges};
use positio::tasks::ner::seqeval::{entities, entity_report, token_report};
use positio::tasks::ner::{split_words, windows};
use std::path::PathBuf;

/// A file with `content`, deleted when the value is dropped.
fn tmp_file(name: &str, content: &[u8]) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new()
        .prefix("positio-ner-")
        .suffix(&format!("-{name}"))
        .tempfile()
        .unwrap();
    std::io::Write::write_all(&mut f, content).unwrap();
    f.into_temp_path()
}

fn s(tags: &str) -> Vec<String> {
    tags.split_whitespace().map(String::from).collect()
}

#[test]
fn reader_accepts_crlf_bom_and_docstart() {
    let p = tmp_file("ok.conll", b"\xEF\xBB\xBF-DOCSTART- -X- -X- O\r\n\r\nEU NNP I-NP I-ORG\r\nrejects VBZ I-VP O\r\n\r\n\r\nPeter NNP I-NP I-PER\r\nBlackburn NNP I-NP I-PER\r\n");
    let sents = conll::read(&p, None).unwrap();
    assert_eq!(sents.len(), 2);
    assert_eq!(sents[0].words, ["EU", "rejects"]);
    assert_eq!(sents[0].tags, ["I-ORG", "O"]);
    assert_eq!(sents[0].line, 3);
    assert_eq!(sents[1].words, ["Peter", "Blackburn"]);
    // A chosen column: the chunk tags.
    let chunks = conll::read(&p, Some(2)).unwrap();
    assert_eq!(chunks[0].tags, ["I-NP", "I-VP"]);
}

#[test]
fn malformed_lines_name_file_line_and_content() {
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "cols.conll",
            b"EU NNP I-NP I-ORG\nrejects VBZ O\n",
            "2: expected 4 columns like the lines before, found 3: \"rejects VBZ O\"",
        ),
        (
            "badtag.conll",
            b"EU NNP I-NP X-PER\n",
            "1: invalid tag \"X-PER\"",
        ),
        ("notype.conll", b"EU B-\n", "1: invalid tag \"B-\""),
        ("bare.conll", b"EU PER\n", "1: invalid tag \"PER\""),
        ("latin1.conll", b"EU O\ncaf\xe9 O\n", "2: not valid UTF-8"),
    ];
    for (name, content, expected) in cases {
        let p = tmp_file(name, content);
        let err = conll::read(&p, None).unwrap_err().to_string();
        assert!(err.starts_with(&p.display().to_string()), "{err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
    let p = tmp_file("one.conll", b"lonely\n");
    assert!(conll::read(&p, None)
        .unwrap_err()
        .to_string()
        .contains("a line needs a word and a tag"));
    let p = tmp_file("empty.conll", b"\n\n");
    assert!(conll::read(&p, None)
        .unwrap_err()
        .to_string()
        .contains("no sentences"));
}

#[test]
fn schemes_are_detected_and_converted_to_iob2() {
    // IOB1: I- starts entities; B- only between two adjacent entities of one type.
    let iob1 = "I-PER I-PER O I-LOC B-LOC I-LOC I-ORG I-MISC";
    assert_eq!(detect([s(iob1).as_slice()]), Scheme::Iob1);
    assert_eq!(
        to_iob2(&s(iob1), Scheme::Iob1),
        s("B-PER I-PER O B-LOC B-LOC I-LOC B-ORG B-MISC")
    );
    let iob2 = "B-PER I-PER O B-LOC B-LOC I-LOC";
    assert_eq!(detect([s(iob2).as_slice()]), Scheme::Iob2);
    assert_eq!(to_iob2(&s(iob2), Scheme::Iob2), s(iob2));
    let iobes = "B-PER E-PER O S-LOC S-LOC B-ORG I-ORG E-ORG";
    assert_eq!(detect([s(iobes).as_slice()]), Scheme::Iobes);
    assert_eq!(
        to_iob2(&s(iobes), Scheme::Iobes),
        s("B-PER I-PER O B-LOC B-LOC B-ORG I-ORG I-ORG")
    );
    // The same entities whichever the scheme.
    let e = |t: &str, sc| entities(&[to_iob2(&s(t), sc)]);
    assert_eq!(
        e("I-PER I-PER O I-LOC B-LOC", Scheme::Iob1),
        e("B-PER E-PER O S-LOC S-LOC", Scheme::Iobes)
    );
}

#[test]
fn entities_follow_seqeval_chunking() {
    // Hand-worked: (sentence, type, first, last).
    let got = entities(&[s("B-PER I-PER O B-LOC I-ORG I-ORG O I-MISC")]);
    let want: Vec<(usize, String, usize, usize)> = vec![
        (0, "PER".into(), 0, 1),
        (0, "LOC".into(), 3, 3),
        (0, "ORG".into(), 4, 5),
        (0, "MISC".into(), 7, 7),
    ];
    assert_eq!(got, want);
    // Sentence ends close entities; B- after I- of the same type starts a new one.
    assert_eq!(
        entities(&[s("B-LOC"), s("I-LOC B-LOC I-LOC")]),
        vec![
            (0, "LOC".into(), 0, 0),
            (1, "LOC".into(), 0, 0),
            (1, "LOC".into(), 1, 2)
        ]
    );
}

#[test]
fn entity_scores_match_a_hand_computed_case() {
    let gold = vec![s("B-PER I-PER O B-LOC O B-ORG I-ORG"), s("B-MISC O B-PER")];
    let pred = vec![s("B-PER I-PER O B-ORG O B-ORG O"), s("B-MISC O B-PER")];
    // Gold: PER(0,0-1), LOC(0,3), ORG(0,5-6), MISC(1,0), PER(1,2) = 5.
    // Predicted: PER(0,0-1) ok, ORG(0,3) wrong type, ORG(0,5) wrong end, MISC ok, PER ok = 3 of 5.
    let r = entity_report(&gold, &pred);
    assert!((r.micro.precision - 0.6).abs() < 1e-12 && (r.micro.recall - 0.6).abs() < 1e-12);
    assert!((r.micro.f1 - 0.6).abs() < 1e-12);
    let row = |t: &str| r.rows.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!(row("PER").support, 2);
    assert!((row("PER").f1 - 1.0).abs() < 1e-12);
    assert!((row("ORG").precision - 0.0).abs() < 1e-12 && row("ORG").support == 1);
    assert!((row("LOC").recall - 0.0).abs() < 1e-12);
    // Macro averages the per-type F1s: PER 1, MISC 1, LOC 0, ORG 0.
    assert!((r.macro_avg.f1 - 0.5).abs() < 1e-12);
}

#[test]
fn token_report_matches_a_hand_computed_case() {
    let gold = vec![s("B-PER I-PER O B-LOC O")];
    let pred = vec![s("B-PER O O B-PER O")];
    let r = token_report(&gold, &pred);
    let labels: Vec<&str> = r.rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["B-LOC", "B-PER", "I-PER", "O"],
        "by type, B before I, O last"
    );
    let row = |t: &str| r.rows.iter().find(|(n, _)| n == t).unwrap().1;
    // B-PER: predicted twice, right once; gold once.
    assert!(
        (row("B-PER").precision - 0.5).abs() < 1e-12 && (row("B-PER").recall - 1.0).abs() < 1e-12
    );
    assert!(
        (row("O").precision - 2.0 / 3.0).abs() < 1e-12 && (row("O").recall - 1.0).abs() < 1e-12
    );
    assert_eq!(row("O").support, 2);
    assert!(
        (r.micro.f1 - 0.6).abs() < 1e-12,
        "micro = accuracy over tokens: 3 of 5"
    );
    let table = r.table();
    assert!(
        table.contains("micro avg")
            && table.contains("macro avg")
            && table.contains("weighted avg")
    );
    assert!(table.contains("0.667"), "three decimals: {table}");
}

#[test]
fn supports_of_a_conll_file_match_an_independent_count() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conll/dev.iob1");
    let (sentences, scheme) = conll::read_iob2(&path, None, None).unwrap();
    assert_eq!(scheme, Scheme::Iob1);
    let gold: Vec<Vec<String>> = sentences.iter().map(|s| s.tags.clone()).collect();
    let report = token_report(&gold, &gold);
    // Independent count: walk the raw file, converting IOB1 to IOB2 with a two-line rule.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut prev = "O".to_string();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "-DOCSTART-" {
            prev = "O".into();
            continue;
        }
        let tag = f[3];
        let iob2 = if let Some(ty) = tag.strip_prefix("I-") {
            if prev == "O" || prev[2..] != *ty {
                format!("B-{ty}")
            } else {
                tag.to_string()
            }
        } else {
            tag.to_string()
        };
        *counts.entry(iob2).or_default() += 1;
        prev = tag.to_string();
    }
    for (label, scores) in &report.rows {
        assert_eq!(scores.support, counts[label], "{label}");
    }
    assert_eq!(report.micro.support, counts.values().sum::<usize>());
    assert_eq!(report.micro.support, 2299);
}

#[test]
fn long_sentences_are_split_into_overlapping_windows_owning_every_word_once() {
    let pieces: Vec<Vec<u32>> = (0..100).map(|i| vec![10 + i as u32; 1 + i % 3]).collect();
    let ws = windows(0, &pieces, 32, 2, 3);
    assert!(ws.len() > 3);
    let mut owner = vec![0; 100];
    for w in &ws {
        assert!(w.ids.len() <= 32);
        assert_eq!((w.ids[0], *w.ids.last().unwrap()), (2, 3));
        for (&word, &pos) in w.words.iter().zip(&w.first_piece) {
            owner[word] += 1;
            assert_eq!(w.ids[pos], pieces[word][0], "first piece of word {word}");
        }
    }
    assert!(
        owner.iter().all(|&c| c == 1),
        "every word is predicted exactly once: {owner:?}"
    );
    // Words in the middle have context on both sides in their window.
    let w = ws.iter().find(|w| w.words.contains(&50)).unwrap();
    let pos = w.first_piece[w.words.iter().position(|&x| x == 50).unwrap()];
    assert!(
        pos > 4 && pos + 4 < w.ids.len(),
        "word 50 at {pos} of {}",
        w.ids.len()
    );
    // A short sentence is one window; a single over-long word is cut, not dropped.
    assert_eq!(windows(0, &pieces[..5], 32, 2, 3).len(), 1);
    let long = vec![vec![7u32; 100]];
    let ws = windows(0, &long, 16, 2, 3);
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].ids.len(), 16);
}

#[test]
fn raw_text_is_split_into_words_with_offsets() {
    let text = "EU rejects German call, says Peter's U.S.-based firm (Müller-Lüdenscheid).";
    let words: Vec<String> = split_words(text).into_iter().map(|w| w.text).collect();
    assert_eq!(
        words,
        [
            "EU",
            "rejects",
            "German",
            "call",
            ",",
            "says",
            "Peter's",
            "U.S",
            ".",
            "-",
            "based",
            "firm",
            "(",
            "Müller-Lüdenscheid",
            ")",
            "."
        ]
    );
    let w = &split_words(text)[13];
    let chars: Vec<char> = text.chars().collect();
    assert_eq!(
        chars[w.start..w.end].iter().collect::<String>(),
        "Müller-Lüdenscheid"
    );
}

#[test]
fn chinese_ideographs_are_words_of_their_own_with_character_offsets() {
    // As in character-level Chinese NER data and BERT's tokenizer: each ideograph one word;
    // full-width digits and Latin letters still run together. Offsets count characters, not
    // the three bytes of each ideograph.
    let text = "１２月３１日，江泽民在北京发表讲话 (CCTV-4)";
    let words = split_words(text);
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "１２", "月", "３１", "日", "，", "江", "泽", "民", "在", "北", "京", "发", "表", "讲",
            "话", "(", "CCTV-4", ")"
        ]
    );
    let chars: Vec<char> = text.chars().collect();
    for w in &words {
        assert_eq!(chars[w.start..w.end].iter().collect::<String>(), w.text);
    }
    assert_eq!((words[9].start, words[10].end), (11, 13), "北京");
}

fn labels() -> Vec<String> {
    s("O B-LOC I-LOC B-PER I-PER")
}

const WHOLE: Edges = Edges {
    starts_sentence: true,
    ends_sentence: true,
};
const INSIDE: Edges = Edges {
    starts_sentence: false,
    ends_sentence: true,
};

#[test]
fn a_window_inside_a_sentence_may_begin_inside_an_entity() {
    // Windows of a long sentence: only the first starts it, only the last ends it.
    let pieces: Vec<Vec<u32>> = (0..40).map(|i| vec![10 + i as u32]).collect();
    let ws = windows(0, &pieces, 12, 1, 2);
    assert!(ws.len() > 2);
    for (k, w) in ws.iter().enumerate() {
        assert_eq!(w.edges.starts_sentence, k == 0, "window {k}");
        assert_eq!(w.edges.ends_sentence, k == ws.len() - 1, "window {k}");
    }
    let labels = labels();
    let crf = Crf::new(5, &cpu().autodiff());
    // Training: a gold path that continues an entity from the previous window (I-PER I-PER O)
    // costs what its scores say, not the -1e4 of an invalid sentence start.
    let em = burn::tensor::Tensor::<3>::zeros([1, 3, 5], &cpu().autodiff());
    let gold = vec![vec![4u32, 4, 0]];
    let inside = crf
        .loss(em.clone(), &gold, &labels, &[INSIDE])
        .into_scalar::<f64>();
    let start = crf.loss(em, &gold, &labels, &[WHOLE]).into_scalar::<f64>();
    assert!(inside < 10.0, "NLL inside a sentence: {inside}");
    assert!(start > 1000.0, "NLL of I- at a sentence start: {start}");
    // Prediction: emissions for I-PER I-PER O keep the entity inside a sentence.
    let e = vec![vec![
        vec![0.0, 0.0, 0.0, 1.0, 3.0],
        vec![0.0, 0.0, 0.0, 0.0, 3.0],
        vec![3.0, 0.0, 0.0, 0.0, 0.0],
    ]];
    assert_eq!(
        crf.scores().decode(&e, &labels, &[INSIDE]),
        vec![vec![4, 4, 0]]
    );
    assert_eq!(
        crf.scores().decode(&e, &labels, &[WHOLE]),
        vec![vec![3, 4, 0]]
    );
}

#[test]
fn viterbi_never_produces_an_invalid_iob2_sequence() {
    let labels = labels();
    let (allowed, start_ok) = iob2_constraints(&labels);
    assert!(!start_ok[2] && !start_ok[4] && start_ok[1]);
    assert!(!allowed[0][2], "O → I-LOC");
    assert!(!allowed[3][2], "B-PER → I-LOC");
    assert!(allowed[1][2] && allowed[2][2], "B-LOC / I-LOC → I-LOC");
    // Emissions that, greedily, would give "I-LOC I-PER O I-PER".
    let e = vec![
        vec![0.0, 1.0, 3.0, 0.0, 0.0],
        vec![0.0, 0.0, 0.0, 1.0, 2.0],
        vec![2.0, 0.0, 0.0, 0.0, 0.0],
        vec![0.0, 0.0, 0.0, 0.5, 1.0],
    ];
    let zeros = vec![0.0; 25];
    let path = viterbi(&e, &zeros, &[0.0; 5], &[0.0; 5], &allowed, &start_ok, 5);
    let tags: Vec<String> = path.iter().map(|&i| labels[i as usize].clone()).collect();
    assert_eq!(tags, s("B-LOC B-PER O B-PER"));
    let mut prev = "O".to_string();
    for t in &tags {
        if let Some(ty) = t.strip_prefix("I-") {
            assert!(prev.ends_with(ty) && prev != "O");
        }
        prev = t.clone();
    }
}

#[test]
fn crf_likelihood_equals_brute_force_enumeration_and_has_exact_gradients() {
    use burn::tensor::DType;
    let labels = labels();
    let (allowed, start_ok) = iob2_constraints(&labels);
    let dev = cpu().autodiff();
    let (t, l) = (4, 5);
    let e0 = values(2 * t * l, 91, 1.0);
    let tr0 = values(l * l, 92, 0.5);
    let gold = vec![vec![1u32, 2, 0, 3], vec![3u32, 4, 0]];
    let nll = |e: &[f64], tr: &[f64]| {
        let crf = Crf::new(l, &dev);
        let crf = Crf {
            transitions: burn::module::Param::from_tensor(f64_tensor(tr.to_vec(), [l, l], &dev)),
            ..positio::model::layers::cast(crf, DType::F64)
        };
        let em = f64_tensor(e.to_vec(), [2, t, l], &dev).require_grad();
        // The second sequence is a window inside a sentence: no start constraint.
        let loss = crf.loss(em.clone(), &gold, &labels, &[WHOLE, INSIDE]);
        let g = loss.clone().backward();
        (to_vec(loss)[0], to_vec(em.grad(&g).unwrap()))
    };
    // Brute force: all valid label sequences of each length.
    let brute = |row: usize, len: usize| -> f64 {
        let score = |path: &[usize]| -> f64 {
            let mut s = e0[row * t * l + path[0]];
            for i in 1..len {
                s += e0[row * t * l + i * l + path[i]] + tr0[path[i - 1] * l + path[i]];
            }
            s
        };
        let valid = |path: &[usize]| {
            (row == 1 || start_ok[path[0]]) && path.windows(2).all(|w| allowed[w[0]][w[1]])
        };
        let mut z = 0.0;
        let mut path = vec![0usize; len];
        loop {
            if valid(&path) {
                z += score(&path).exp();
            }
            let mut k = 0;
            while k < len && path[k] == l - 1 {
                path[k] = 0;
                k += 1;
            }
            if k == len {
                break;
            }
            path[k] += 1;
        }
        let g: Vec<usize> = gold[row].iter().map(|&x| x as usize).collect();
        z.ln() - score(&g)
    };
    let expected = (brute(0, 4) + brute(1, 3)) / 2.0;
    let (got, grad) = nll(&e0, &tr0);
    assert!(
        (got - expected).abs() < 1e-9,
        "NLL {got} vs enumeration {expected}"
    );
    let idx = sample_indices(e0.len(), 15);
    let num = numeric_grad(&|x| nll(x, &tr0).0, &e0, &idx, 1e-6);
    let ana: Vec<f64> = idx.iter().map(|&i| grad[i]).collect();
    assert!(
        max_abs_diff(&num, &ana) < 1e-7,
        "emission gradients vs finite differences"
    );
}

#[test]
fn entity_scores_equal_seqeval_on_random_and_ill_formed_sequences() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seqeval_cases.json");
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cases.len(), 200);
    for (k, case) in cases.iter().enumerate() {
        let gold: Vec<Vec<String>> = serde_json::from_value(case["gold"].clone()).unwrap();
        let pred: Vec<Vec<String>> = serde_json::from_value(case["pred"].clone()).unwrap();
        let r = entity_report(&gold, &pred);
        for (ours, key) in [
            (r.micro.precision, "precision"),
            (r.micro.recall, "recall"),
            (r.micro.f1, "f1"),
        ] {
            assert!(
                (ours - case[key].as_f64().unwrap()).abs() < 1e-12,
                "case {k} {key}: {ours} vs {}",
                case[key]
            );
        }
        for (ty, v) in case["per_type"].as_object().unwrap() {
            let row = r.rows.iter().find(|(n, _)| n == ty).map(|(_, s)| *s);
            let (f1, support) = (v[0].as_f64().unwrap(), v[1].as_u64().unwrap() as usize);
            let row = row.unwrap_or_else(|| panic!("case {k}: no row for {ty}"));
            assert!(
                (row.f1 - f1).abs() < 1e-12 && row.support == support,
                "case {k} {ty}"
            );
        }
    }
}

#[test]
fn hugging_face_token_classification_checkpoints_load_and_agree() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_tiny_ner");
    let fx = Fixture::open("hf_tiny_ner/reference.safetensors");
    let ner = positio::tasks::ner::NerModel::load(&dir, None, &cpu()).unwrap();
    assert_eq!(
        ner.labels,
        s("O B-LOC I-LOC B-MISC I-MISC B-ORG I-ORG B-PER I-PER")
    );
    let sentences: Vec<Vec<String>> = serde_json::from_str(&fx.metadata("sentences")).unwrap();
    for (i, words) in sentences.iter().enumerate() {
        let ids: Vec<u32> = fx
            .i64(&format!("ids.{i}"))
            .iter()
            .map(|&x| x as u32)
            .collect();
        // positio's own alignment gives the same pieces as transformers' tokenizer.
        let pieces = positio::tasks::ner::word_pieces(&ner.tokenizer, words).unwrap();
        assert_eq!(pieces.concat(), ids[1..ids.len() - 1], "sentence {i}");
        let batch = positio::model::encoder::Batch::new(std::slice::from_ref(&ids), 0, &cpu());
        let positions = positio::train::masking::lm_targets(
            &(0..ids.len()).collect::<Vec<_>>(),
            &vec![0; ids.len()],
            &cpu(),
        )
        .positions;
        let logits = to_vec(ner.model.emissions(&batch, positions));
        let reference: Vec<f64> = fx
            .f32(&format!("logits.{i}"))
            .iter()
            .map(|&x| x as f64)
            .collect();
        assert!(
            max_abs_diff(&logits, &reference) < 1e-5,
            "sentence {i}: {}",
            max_abs_diff(&logits, &reference)
        );
    }
}
