//! The Chinese README and guide (README.zh.md, docs/GUIDE.zh.md) promise that every command in
//! them runs as written: each `positio …` command of their `sh` blocks is given to the real
//! command-line parser, so a misspelt flag, a missing value or a renamed subcommand fails here.
//! (The runs themselves are experiments/chinese.sh, whose commands the docs copy.)

use clap::Parser;
use positio::cli::Cli;

/// Splits one shell command into words: quotes group, `$VAR` stays as written, and an
/// unquoted `#`, `|`, `>`, `&` or `;` ends the command.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '#' | '|' | '>' | '&' | ';') => break,
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// The `positio` commands of a Markdown file's `sh` blocks, continuation lines joined: (line
/// number, words).
fn commands(path: &str) -> Vec<(usize, Vec<String>)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut found = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        joined.push_str(line.trim_end_matches('\\'));
        joined.push(' ');
        if line.ends_with('\\') {
            pending = Some((start, joined));
            continue;
        }
        let w = words(&joined);
        let at = match w.first().map(String::as_str) {
            Some("positio") => 0,
            Some("cargo") if w.iter().any(|x| x == "--") => {
                w.iter().position(|x| x == "--").unwrap()
            }
            _ => continue,
        };
        let mut argv = vec!["positio".to_string()];
        argv.extend(w[at + 1..].iter().cloned());
        found.push((start, argv));
    }
    found
}

#[test]
fn every_command_of_the_chinese_docs_parses() {
    for path in ["README.zh.md", "docs/GUIDE.zh.md"] {
        let found = commands(path);
        assert!(found.len() >= 10, "{path}: only {} commands", found.len());
        for (line, argv) in found {
            if let Err(e) = Cli::try_parse_from(&argv) {
                panic!("{path}:{line}: `{}` does not parse:\n{e}", argv.join(" "));
            }
        }
    }
}

#[test]
fn a_misspelt_flag_is_caught() {
    assert_eq!(
        words(r#"positio predict ner --model "runs/zh/ner" --text '江泽民在北京' # a comment"#),
        [
            "positio",
            "predict",
            "ner",
            "--model",
            "runs/zh/ner",
            "--text",
            "江泽民在北京"
        ]
    );
    let argv = ["positio", "predict", "ner", "--modle", "runs/zh/ner"];
    assert!(Cli::try_parse_from(argv).is_err());
}
