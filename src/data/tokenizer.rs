//! WordPiece tokenisation through Hugging Face's `tokenizers` (the same `tokenizer.json`
//! Python loads), with positio choosing truncation and padding per batch.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::PostProcessor;

/// One text (pair) as the model reads it, with `full_len`: its length in tokens before
/// truncation (to tell a caller by how much it was too long).
pub struct Encoded {
    pub encoding: tokenizers::Encoding,
    pub full_len: usize,
}

#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub path: PathBuf,
    pub pad_id: u32,
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::file(
                path,
                "missing: a model directory needs tokenizer.json",
            ));
        }
        let text = crate::data::text::read_text(path, crate::data::text::TextEncoding::Utf8)?;
        let broken = |what: &str| Error::file(path, format!("not a usable tokenizer: {what}"));
        // `tokenizers` unwraps some nested errors (a malformed decoder panics in 0.22.2): its
        // panics are caught, and a file it fails on is checked as JSON to name the line and
        // column of a syntax error.
        let mut inner = match quietly(|| text.parse::<tokenizers::Tokenizer>()) {
            Some(Ok(inner)) => inner,
            failed => {
                serde_json::from_str::<serde::de::IgnoredAny>(&text)
                    .map_err(|e| Error::file(path, format!("not valid JSON: {e}")))?;
                return Err(match failed {
                    Some(Err(e)) => broken(&e.to_string()),
                    _ => broken("the tokenizers library failed reading it"),
                });
            }
        };
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .unwrap_or(0);
        // The file's own padding / truncation (e.g. fixed 128) would silently change inputs:
        // positio pads to the longest sequence of each batch and truncates to the model's limit.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::file(path, format!("cannot reset truncation: {e}")))?;
        // A file can read well and still crash every encoding: a post-processor naming a special
        // token the file does not define panics inside `tokenizers`. One text and one pair
        // encoded here find that at load time, as an error. (An encoding error is the text's
        // problem, not the file's: a word-level vocabulary without `[UNK]` refuses "a".)
        quietly(|| {
            let _ = inner.encode("a", true);
            let _ = inner.encode(("a", "b"), true);
        })
        .ok_or_else(|| {
            broken("encoding crashes inside the tokenizers library (does its post-processor name a special token the file does not define?)")
        })?;
        Ok(Tokenizer {
            inner,
            path: path.to_path_buf(),
            pad_id,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids with the special tokens (\[CLS\] … \[SEP\]), truncated to `max_len` (keeping the
    /// final \[SEP\]).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Vec<u32>> {
        Ok(self.encode_pair(text, None, max_len)?.0)
    }

    /// Token ids and segment ids of `[CLS] text [SEP]` or, with a pair, `[CLS] text [SEP] pair
    /// [SEP]` (segment 0, then 1 for the pair), truncated to `max_len` as `transformers` does
    /// by default: word pieces are taken from the end of the longer text first, the special
    /// tokens stay.
    pub fn encode_pair(
        &self,
        text: &str,
        pair: Option<&str>,
        max_len: usize,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        let enc = self.encode_full(text, pair, max_len)?.encoding;
        Ok((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()))
    }

    /// [`Self::encode_pair`] with everything the tokenizer knows: character offsets into the
    /// text, which tokens are special, and the length before truncation.
    pub fn encode_full(&self, text: &str, pair: Option<&str>, max_len: usize) -> Result<Encoded> {
        let bad = |e: tokenizers::Error| {
            Error::file(&self.path, format!("cannot tokenize {text:?}: {e}"))
        };
        let plain = |t: &str| self.inner.encode_char_offsets(t, false).map_err(bad);
        let (first, second) = (plain(text)?, pair.map(plain).transpose()?);
        let added = self
            .inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(second.is_some()));
        let params = tokenizers::TruncationParams {
            max_length: max_len.saturating_sub(added),
            strategy: tokenizers::TruncationStrategy::LongestFirst,
            ..Default::default()
        };
        let full_len = first.len() + second.as_ref().map_or(0, |e| e.len()) + added;
        let (first, second) = if full_len > max_len {
            tokenizers::utils::truncation::truncate_encodings(first, second, &params)
                .map_err(|e| Error::file(&self.path, format!("cannot truncate {text:?}: {e}")))?
        } else {
            (first, second)
        };
        let encoding = self
            .inner
            .post_process(first, second, true)
            .map_err(|e| Error::file(&self.path, format!("cannot add special tokens: {e}")))?;
        Ok(Encoded { encoding, full_len })
    }

    /// The token string of an id (`##ing`, `[CLS]`).
    pub(crate) fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Tokens joined into text as `transformers`' `convert_tokens_to_string` does: through the
    /// tokenizer's decoder (`##` pieces glued, spaces before punctuation cleaned up), or with
    /// spaces when it has none.
    pub(crate) fn join_tokens(&self, tokens: Vec<String>) -> Result<String> {
        use tokenizers::Decoder;
        match self.inner.get_decoder() {
            Some(d) => d
                .decode(tokens)
                .map_err(|e| Error::file(&self.path, format!("cannot join tokens: {e}"))),
            None => Ok(tokens.join(" ")),
        }
    }

    /// The mark of a word's continuation pieces (`##` for WordPiece), if the model has one.
    pub(crate) fn continuing_subword_prefix(&self) -> Option<String> {
        let model = serde_json::to_value(self.inner.get_model()).ok()?;
        let prefix = model.get("continuing_subword_prefix")?.as_str()?;
        (!prefix.is_empty()).then(|| prefix.to_string())
    }

    pub(crate) fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Writes `tokenizer.json` (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| Error::file(path, format!("cannot serialise tokenizer: {e}")))?;
        crate::io::write_atomic(path, json.as_bytes())
    }

    /// Whether the tokenizer lowercases its input (a `BertNormalizer` with `lowercase`, or a
    /// `Lowercase` normalizer anywhere in its normalizer sequence).
    pub fn lowercases(&self) -> bool {
        fn lowercase(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::Object(m) => {
                    m.get("type").and_then(|t| t.as_str()) == Some("Lowercase")
                        || (m.get("type").and_then(|t| t.as_str()) == Some("BertNormalizer")
                            && m.get("lowercase").and_then(|l| l.as_bool()) == Some(true))
                        || m.values().any(lowercase)
                }
                serde_json::Value::Array(a) => a.iter().any(lowercase),
                _ => false,
            }
        }
        self.inner
            .get_normalizer()
            .and_then(|n| serde_json::to_value(n).ok())
            .is_some_and(|v| lowercase(&v))
    }

    /// Whether each id is a `##` continuation piece (for whole-word masking).
    pub(crate) fn continuation_flags(&self) -> Vec<bool> {
        let mut flags = vec![false; self.vocab_size()];
        for (token, id) in self.inner.get_vocab(true) {
            if let Some(f) = flags.get_mut(id as usize) {
                *f = token.starts_with("##");
            }
        }
        flags
    }
}

/// The special tokens of a positio-trained tokenizer, with ids 0..5 in this order.
pub(crate) const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Options of `train_wordpiece`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrainOptions {
    pub vocab_size: usize,
    /// Keep case (as CoNLL NER needs) or lowercase everything.
    pub cased: bool,
    /// Pieces seen fewer times are not merged into the vocabulary.
    pub min_frequency: u64,
}

/// Runs `f`, a call into the tokenizers library, with a panic in it turned into `None` and not
/// printed (the caller reports a broken file instead). The panic hook is swapped for the call,
/// under a lock: a panic on another thread meanwhile would go unprinted too, which only
/// matters during a tokenizer's loading.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _only_us = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.ok()
}

/// Trains a BERT-style WordPiece tokenizer (BERT normaliser and pre-tokeniser, [CLS] … [SEP]
/// post-processing) on `texts`: the same inputs give the same tokenizer (see `wordpiece`).
pub(crate) fn train_wordpiece<I, S>(texts: I, opts: TrainOptions) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::bert::BertProcessing;
    use tokenizers::{
        NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString,
        PreTokenizer, TokenizerBuilder,
    };

    let fail = |e: tokenizers::Error| Error::invalid(format!("tokenizer training failed: {e}"));
    let normalizer = BertNormalizer::new(true, true, None, !opts.cased);
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for text in texts {
        let mut normalized = NormalizedString::from(text.as_ref());
        normalizer.normalize(&mut normalized).map_err(fail)?;
        let mut words = PreTokenizedString::from(normalized);
        BertPreTokenizer.pre_tokenize(&mut words).map_err(fail)?;
        for (word, _, _) in words.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            *counts.entry(word.to_owned()).or_default() += 1;
        }
    }
    let pieces = crate::data::wordpiece::train(
        &counts,
        opts.vocab_size,
        opts.min_frequency,
        &SPECIAL_TOKENS,
    );

    let model = WordPiece::builder()
        .unk_token("[UNK]".into())
        .build()
        .map_err(fail)?;
    let tk = TokenizerBuilder::new()
        .with_model(model)
        .with_normalizer(Some(normalizer))
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), 3),
            ("[CLS]".into(), 2),
        )))
        .with_decoder(Some(WordPieceDecoder::default()))
        .build()
        .map_err(fail)?;
    let mut inner: tokenizers::Tokenizer = tk.into();
    let specials: Vec<tokenizers::AddedToken> = SPECIAL_TOKENS
        .iter()
        .map(|t| tokenizers::AddedToken::from(*t, true))
        .collect();
    // The vocabulary goes in through the serialised form (the model's own setter wants the
    // crate's private hash-map type).
    let mut json: serde_json::Value = serde_json::from_str(&inner.to_string(false).map_err(fail)?)
        .map_err(|e| Error::invalid(format!("tokenizer training failed: {e}")))?;
    json["model"]["vocab"] = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), serde_json::Value::from(i)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    inner = json.to_string().parse().map_err(fail)?;
    inner.add_special_tokens(&specials);
    for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
        debug_assert_eq!(inner.token_to_id(token), Some(id as u32));
    }
    Ok(Tokenizer {
        inner,
        path: PathBuf::new(),
        pad_id: 0,
    })
}
