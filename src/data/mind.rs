//! News-recommendation data in Microsoft's MIND layout, the format the field exchanges click
//! logs in: a directory with `news.tsv` (news id, category, subcategory, title, abstract, url,
//! title entities, abstract entities) and `behaviors.tsv` (impression id, user, time, clicked
//! history, impressions `N1-1 N2-0 …`), tab-separated, no header. Test sets leave the labels
//! off (`N1 N2 …`). Every problem is reported with its file and line; an impression or history
//! that names a news id `news.tsv` lacks is an error, never a silent skip.

use crate::data::text::{read_text, TextEncoding};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

pub const NEWS: &str = "news.tsv";
pub const BEHAVIORS: &str = "behaviors.tsv";

/// One news item.
#[derive(Debug, Clone, PartialEq)]
pub struct News {
    pub id: String,
    pub category: String,
    pub subcategory: String,
    pub title: String,
    pub r#abstract: String,
}

impl News {
    /// What the news encoder reads: title and abstract joined by a space.
    pub fn text(&self) -> String {
        format!("{} {}", self.title, self.r#abstract)
            .trim()
            .to_string()
    }
}

/// The news of a `news.tsv`, in file order, with an index by id.
#[derive(Debug, Clone, Default)]
pub struct NewsSet {
    pub items: Vec<News>,
    slots: HashMap<String, usize>,
}

impl NewsSet {
    /// The position of a news id in `items`.
    pub fn slot(&self, id: &str) -> Option<usize> {
        self.slots.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One impression: what a user had clicked before, and the candidates shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Impression {
    pub id: String,
    pub user: String,
    pub time: String,
    /// Clicked news, oldest first (positions in the news set).
    pub history: Vec<usize>,
    /// The candidates shown, in file order (positions in the news set).
    pub candidates: Vec<usize>,
    /// Clicked (1) or not (0), one per candidate; `None` in a test set.
    pub labels: Option<Vec<u8>>,
}

/// A MIND directory read whole.
#[derive(Debug, Clone)]
pub struct MindData {
    pub news: NewsSet,
    pub impressions: Vec<Impression>,
}

impl MindData {
    /// Whether every impression carries click labels (needed to train and evaluate).
    pub fn labelled(&self) -> bool {
        self.impressions.iter().all(|i| i.labels.is_some())
    }
}

/// Reads `dir/news.tsv` and `dir/behaviors.tsv`.
pub fn read(dir: &Path) -> Result<MindData> {
    if !dir.is_dir() {
        return Err(Error::file(
            dir,
            "not a MIND directory (expected news.tsv and behaviors.tsv)",
        ));
    }
    let news = read_news(&dir.join(NEWS))?;
    let impressions = read_behaviors(&dir.join(BEHAVIORS), &news)?;
    Ok(MindData { news, impressions })
}

/// Reads a `news.tsv`: at least id, category, subcategory and title; the abstract, url and
/// entity columns may be missing (converted logs), more than eight columns are refused.
pub fn read_news(path: &Path) -> Result<NewsSet> {
    let text = read_text(path, TextEncoding::Utf8)?;
    let mut set = NewsSet::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let bad = |what: String| Err(Error::line(path, line_no, what));
        if !(4..=8).contains(&cols.len()) {
            return bad(format!(
                "{} tab-separated columns; news.tsv has 4 to 8 (id, category, subcategory, title, abstract, url, title entities, abstract entities)",
                cols.len()
            ));
        }
        let id = cols[0].trim();
        if id.is_empty() {
            return bad("empty news id".into());
        }
        let item = News {
            id: id.to_string(),
            category: cols[1].trim().to_string(),
            subcategory: cols[2].trim().to_string(),
            title: cols[3].trim().to_string(),
            r#abstract: cols.get(4).map_or("", |s| s.trim()).to_string(),
        };
        if item.text().is_empty() {
            return bad(format!(
                "news {id:?} has neither title nor abstract: nothing to read"
            ));
        }
        if let Some(&first) = set.slots.get(id) {
            return bad(format!(
                "news id {id:?} already used on line {}",
                line_of(&text, &set.items[first].id)
            ));
        }
        set.slots.insert(item.id.clone(), set.items.len());
        set.items.push(item);
    }
    if set.items.is_empty() {
        return Err(Error::file(path, "no news"));
    }
    Ok(set)
}

/// The 1-based line a news id first starts (for a duplicate's message).
fn line_of(text: &str, id: &str) -> usize {
    text.lines()
        .position(|l| l.split('\t').next().map(str::trim) == Some(id))
        .map_or(0, |i| i + 1)
}

/// Reads a `behaviors.tsv` against the news of its directory: five columns, impression ids
/// unique, every history and candidate id known, labels 0 or 1 on all candidates of a line or
/// on none.
pub fn read_behaviors(path: &Path, news: &NewsSet) -> Result<Vec<Impression>> {
    let text = read_text(path, TextEncoding::Utf8)?;
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = |what: String| Error::line(path, line_no, what);
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 5 {
            return Err(at(format!(
                "{} tab-separated columns; behaviors.tsv has 5 (impression id, user, time, history, impressions)",
                cols.len()
            )));
        }
        let id = cols[0].trim();
        if id.is_empty() {
            return Err(at("empty impression id".into()));
        }
        if let Some(first) = seen.insert(id.to_string(), line_no) {
            return Err(at(format!(
                "impression id {id:?} already used on line {first}"
            )));
        }
        let known = |nid: &str| {
            news.slot(nid)
                .ok_or_else(|| at(format!("news id {nid:?} is not in {NEWS}")))
        };
        let history = cols[3]
            .split_whitespace()
            .map(known)
            .collect::<Result<Vec<_>>>()?;
        let mut candidates = Vec::new();
        let mut labels = Vec::new();
        for entry in cols[4].split_whitespace() {
            match entry.rsplit_once('-') {
                Some((nid, label)) if !nid.is_empty() => {
                    let label = match label {
                        "0" => 0,
                        "1" => 1,
                        _ => {
                            return Err(at(format!(
                                "impression {entry:?}: the label after '-' must be 0 or 1"
                            )))
                        }
                    };
                    candidates.push(known(nid)?);
                    labels.push(label);
                }
                _ => candidates.push(known(entry)?),
            }
        }
        if candidates.is_empty() {
            return Err(at("no impressions (candidates) on the line".into()));
        }
        let labels = match labels.len() {
            0 => None,
            n if n == candidates.len() => Some(labels),
            _ => {
                return Err(at(
                    "some candidates carry a click label and some do not: label all (N1-1 N2-0) or none (a test set)".into(),
                ))
            }
        };
        out.push(Impression {
            id: id.to_string(),
            user: cols[1].trim().to_string(),
            time: cols[2].trim().to_string(),
            history,
            candidates,
            labels,
        });
    }
    if out.is_empty() {
        return Err(Error::file(path, "no impressions"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::test_file as write;

    const NEWS_TSV: &str = "N1\tfinance\t\tOil prices rise\tOPEC cut output.\t\t[]\t[]\n\
N2\t\t\tGold falls\t\n\
N3\tsports\tsoccer\tA match\tA long abstract\thttps://x\t[]\t[]\n";

    fn dir_with(behaviors: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), NEWS, NEWS_TSV);
        write(dir.path(), BEHAVIORS, behaviors);
        dir
    }

    #[test]
    fn reads_news_and_labelled_and_unlabelled_impressions() {
        let dir = dir_with(
            "1\tU1\t11/15/2019 8:55:22 AM\tN1 N3\tN2-1 N3-0\n2\tU2\t11/15/2019 9:00:00 AM\t\tN1 N2\n",
        );
        let data = read(dir.path()).unwrap();
        assert_eq!(data.news.len(), 3);
        assert_eq!(
            data.news.items[0].text(),
            "Oil prices rise OPEC cut output."
        );
        assert_eq!(data.news.items[1].text(), "Gold falls");
        let [a, b] = &data.impressions[..] else {
            panic!("two impressions")
        };
        assert_eq!(a.history, vec![0, 2]);
        assert_eq!(a.candidates, vec![1, 2]);
        assert_eq!(a.labels, Some(vec![1, 0]));
        assert!(b.history.is_empty());
        assert_eq!(b.labels, None);
        assert!(!data.labelled());
    }

    #[test]
    fn malformed_lines_are_errors_with_file_and_line() {
        let cases = [
            (
                "1\tU1\tT\tN1\tN9-1 N2-0\n",
                "behaviors.tsv:1: news id \"N9\" is not in news.tsv",
            ),
            ("1\tU1\tT\tN7\tN1-1\n", "behaviors.tsv:1: news id \"N7\""),
            (
                "1\tU1\tT\tN1\tN1-1\n1\tU2\tT\t\tN2-0\n",
                "behaviors.tsv:2: impression id \"1\" already used on line 1",
            ),
            ("1\tU1\tT\tN1\n", "behaviors.tsv:1: 4 tab-separated columns"),
            ("1\tU1\tT\tN1\tN1-2\n", "the label after '-' must be 0 or 1"),
            (
                "1\tU1\tT\tN1\tN1-1 N2\n",
                "some candidates carry a click label",
            ),
            ("1\tU1\tT\tN1\t \n", "no impressions"),
        ];
        for (behaviors, expected) in cases {
            let dir = dir_with(behaviors);
            let e = read(dir.path()).unwrap_err().to_string();
            assert!(e.contains(expected), "{e} / {expected}");
        }
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), NEWS, "N1\t\t\tA\nN1\t\t\tB\n");
        let e = read_news(&dir.path().join(NEWS)).unwrap_err().to_string();
        assert!(
            e.contains("news.tsv:2: news id \"N1\" already used on line 1"),
            "{e}"
        );
        write(dir.path(), NEWS, "N1\t\t\t\t\n");
        let e = read_news(&dir.path().join(NEWS)).unwrap_err().to_string();
        assert!(
            e.contains("news.tsv:1: news \"N1\" has neither title"),
            "{e}"
        );
        write(dir.path(), NEWS, "N1\tA\n");
        let e = read_news(&dir.path().join(NEWS)).unwrap_err().to_string();
        assert!(e.contains("news.tsv:1: 2 tab-separated columns"), "{e}");
    }
}
