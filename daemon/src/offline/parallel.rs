//! Processing a list of files on a fixed number of worker threads, reporting results in
//! input order as soon as they are ready.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Run `work` on every file with `jobs` threads. Each thread first builds its own state
/// with `init` (plugin instances are per thread). `report` sees results in input order.
pub fn for_each_file<S, T, E>(
    files: &[PathBuf],
    jobs: usize,
    init: impl Fn() -> Result<S, E> + Sync,
    work: impl Fn(&mut S, &PathBuf) -> T + Sync,
    mut report: impl FnMut(&PathBuf, T) + Send,
) -> Result<(), E>
where
    T: Send,
    E: Send,
{
    let next = AtomicUsize::new(0);
    let ordered = Mutex::new((0usize, BTreeMap::new(), &mut report));
    let jobs = jobs.clamp(1, files.len().max(1));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| -> Result<(), E> {
                    let mut state = init()?;
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(index) else { return Ok(()) };
                        let result = work(&mut state, file);
                        let mut guard = ordered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        let (emitted, pending, report) = &mut *guard;
                        pending.insert(index, result);
                        while let Some(result) = pending.remove(emitted) {
                            report(&files[*emitted], result);
                            *emitted += 1;
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_input_order() {
        let files: Vec<PathBuf> = (0..50).map(|i| PathBuf::from(format!("{i}"))).collect();
        let mut seen = Vec::new();
        for_each_file(
            &files,
            4,
            || Ok::<_, ()>(()),
            |_, f| {
                let n: u64 = f.to_string_lossy().parse().unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_micros((50 - n) * 20));
                n
            },
            |_, n| seen.push(n),
        )
        .expect("no init error");
        assert_eq!(seen, (0..50).collect::<Vec<u64>>());
    }
}
