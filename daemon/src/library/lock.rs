//! One daemon per data directory: two writers of one library would each believe their own
//! view of it. The lock is an OS file lock, so it goes away with the process, `kill -9` too.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "timbred.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "another timbred ({holder}) is using the data directory {}; stop it first, or give this one \
         its own --data-dir",
        dir.display()
    )]
    Held { dir: PathBuf, holder: String },
}

/// Held while the daemon runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Lock `dir` (created if missing), or say which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "pid unknown".to_string(),
                    pid => format!("pid {pid}"),
                };
                return Err(LockError::Held { dir: dir.to_path_buf(), holder });
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
        // The pid is for the message above only; the lock itself is what counts.
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder_and_a_released_one_is_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first");
        let error = DataDirLock::acquire(dir.path()).expect_err("second");
        let message = error.to_string();
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again");
    }
}
