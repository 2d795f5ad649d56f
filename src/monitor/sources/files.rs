//! JSON Lines sources: standard input, a file, or a directory of files (its `.jsonl` and
//! `.json` files, in name order). A file's position (byte offset and line number) is stored
//! with the items it covers, so a resumed monitor goes on where it stopped and its errors still
//! name the right line. A last line without its newline may still be being written: it is left
//! for the next look.

use crate::monitor::item::Item;
use crate::monitor::Monitor;
use crate::{Error, Result};
use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};

/// The files of a source in reading order (a directory's `.jsonl` / `.json` files by name).
pub(super) fn files_of(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(Error::file(path, "no such file or directory"));
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, "read", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl" || x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads `reader` (from `origin`, named `source` in the store) from `offset` / `line_no`, in
/// batches, until its end or an interrupt.
pub(super) fn read_lines(
    monitor: &mut Monitor,
    origin: &Path,
    source: &str,
    reader: &mut dyn BufRead,
    mut offset: u64,
    mut line_no: u64,
) -> Result<()> {
    let mut items = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::io(origin, "read", e))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        offset += n as u64;
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        match Item::parse(origin, line_no as usize, line.trim_end()) {
            Ok(item) => items.push(item),
            Err(e) => monitor.malformed(&e),
        }
        if items.len() == monitor.batch_size() {
            monitor.batch(std::mem::take(&mut items), source, offset, line_no)?;
        }
        if crate::train::trainer::interrupted() {
            break;
        }
    }
    monitor.batch(items, source, offset, line_no)
}

/// Reads what is new in one file.
pub(super) fn read_file(monitor: &mut Monitor, path: &Path) -> Result<()> {
    let source = path.display().to_string();
    let (offset, line) = monitor.position(&source)?;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "stat", e))?
        .len();
    if len <= offset {
        return Ok(());
    }
    file.seek(std::io::SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, "seek", e))?;
    let mut reader = std::io::BufReader::new(file);
    read_lines(monitor, path, &source, &mut reader, offset, line)
}

/// Reads standard input to its end.
pub(super) fn read_stdin(monitor: &mut Monitor) -> Result<()> {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    read_lines(monitor, Path::new("<stdin>"), "-", &mut lock, 0, 0)
}
