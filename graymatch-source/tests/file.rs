//! The file source over real files: a Kubernetes ConfigMap's `..data`
//! symlink swap (20 in a row), editors' write-and-rename, a file briefly
//! missing, a refused edit, and 3 watchers converging on 100 edits.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use graymatch_source::file::FileSource;
use graymatch_source::{Origin, Watcher, version_of};
use support::{TempDir, converge, converge_from, percentiles, rules};

async fn watcher(path: &Path) -> Watcher {
    let source = FileSource::new(path)
        .debounce(Duration::from_millis(20))
        .rescan(Duration::from_secs(30));
    Watcher::builder(source)
        .first_wait(Duration::from_secs(2))
        .start()
        .await
        .expect("the watcher starts")
}

/// Writes `text` to `path` as editors do: a new file renamed over the old.
fn write_and_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A ConfigMap volume as the kubelet writes it: `rules.yaml ->
/// ..data/rules.yaml`, `..data -> ..<timestamp>/`, updated by writing a new
/// timestamped directory and renaming a new `..data_tmp` symlink over
/// `..data`, then removing the old directory.
struct ConfigMap<'a> {
    dir: &'a Path,
    generation: usize,
}

impl<'a> ConfigMap<'a> {
    fn create(dir: &'a Path, text: &str) -> Self {
        let mut cm = ConfigMap { dir, generation: 0 };
        cm.update(text);
        std::os::unix::fs::symlink("..data/rules.yaml", dir.join("rules.yaml")).unwrap();
        cm
    }

    fn update(&mut self, text: &str) {
        let old = format!("..2026_11_23_10_00_00.{:09}", self.generation);
        self.generation += 1;
        let new = format!("..2026_11_23_10_00_00.{:09}", self.generation);
        std::fs::create_dir(self.dir.join(&new)).unwrap();
        std::fs::write(self.dir.join(&new).join("rules.yaml"), text).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        let _ = std::fs::remove_dir_all(self.dir.join(old));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_symlink_swap_20_times_in_a_row() {
    let dir = TempDir::new("configmap");
    let mut cm = ConfigMap::create(dir.path(), &rules(0));
    let w = watcher(&dir.join("rules.yaml")).await;
    assert_eq!(
        w.version().unwrap().digest(),
        version_of(rules(0).as_bytes()).digest()
    );
    for i in 1..=20 {
        cm.update(&rules(i));
        let want = version_of(rules(i).as_bytes());
        assert!(
            converge(&w, &want, Duration::from_secs(1)).await.is_some(),
            "swap {i} not seen: {}",
            w.status()
        );
    }
    let status = w.status();
    assert_eq!(status.origin, Some(Origin::Source));
    assert_eq!(status.source_errors, 0, "{status}");
    assert!(
        status
            .version
            .unwrap()
            .revision()
            .unwrap()
            .starts_with("mtime ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_and_a_briefly_missing_file() {
    let dir = TempDir::new("editors");
    let path = dir.join("rules.yaml");
    std::fs::write(&path, rules(1)).unwrap();
    let w = watcher(&path).await;
    // (what happens to the file, the text it ends with)
    let steps: [(&str, usize); 4] = [
        ("write and rename", 2),
        ("write in place", 3),
        ("removed, then written again", 4),
        ("write and rename again", 5),
    ];
    for (step, i) in steps {
        match step {
            "write in place" => std::fs::write(&path, rules(i)).unwrap(),
            "removed, then written again" => {
                std::fs::remove_file(&path).unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                // Missing: the rules in force keep serving.
                assert_eq!(
                    w.version().unwrap().digest(),
                    version_of(rules(i - 1).as_bytes()).digest()
                );
                let status = w.status();
                assert_eq!(status.source_up, Some(false), "{status}");
                assert!(status.last_error.unwrap().contains("cannot read"));
                std::fs::write(&path, rules(i)).unwrap();
            }
            _ => write_and_rename(&path, &rules(i)),
        }
        assert!(
            converge(&w, &version_of(rules(i).as_bytes()), Duration::from_secs(1))
                .await
                .is_some(),
            "{step}: {}",
            w.status()
        );
    }
    assert_eq!(w.status().source_up, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edit_refused_then_fixed() {
    let dir = TempDir::new("invalid");
    let path = dir.join("rules.yaml");
    std::fs::write(&path, rules(1)).unwrap();
    let w = watcher(&path).await;
    let bad = "default: stable\nrules:\n  - { name: a, to: gray }\n  - { name: a, to: gray }\n";
    write_and_rename(&path, bad);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = w.status();
    assert_eq!(
        status.version.unwrap().digest(),
        version_of(rules(1).as_bytes()).digest()
    );
    assert_eq!(status.reload_failures, 1);
    assert!(status.last_error.unwrap().contains("rules[1] (a)"));
    write_and_rename(&path, &rules(2));
    assert!(
        converge(&w, &version_of(rules(2).as_bytes()), Duration::from_secs(1))
            .await
            .is_some()
    );
    assert!(w.status().last_reload_successful);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_watchers_converge_on_each_of_100_edits() {
    let dir = TempDir::new("converge");
    let path = dir.join("rules.yaml");
    std::fs::write(&path, rules(0)).unwrap();
    let watchers = [
        watcher(&path).await,
        watcher(&path).await,
        watcher(&path).await,
    ];
    let mut delays = Vec::new();
    for i in 1..=100 {
        let want = version_of(rules(i).as_bytes());
        let started = Instant::now();
        write_and_rename(&path, &rules(i));
        let limit = Duration::from_secs(1);
        let (a, b, c) = tokio::join!(
            converge_from(&watchers[0], &want, started, limit),
            converge_from(&watchers[1], &want, started, limit),
            converge_from(&watchers[2], &want, started, limit),
        );
        for (n, took) in [a, b, c].into_iter().enumerate() {
            delays.push(took.unwrap_or_else(|| panic!("edit {i} not seen by watcher {n} in 1 s")));
        }
    }
    let (p50, p99) = percentiles(&mut delays);
    println!(
        "file propagation over {} deliveries (debounce 20 ms): p50 {p50:?}, p99 {p99:?}",
        delays.len()
    );
}
