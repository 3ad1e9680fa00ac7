//! Manifest admission: no pod ever starts (or is replaced) from a file that is still being
//! written.
//!
//! - A file that **arrives by rename** (inotify `IN_MOVED_TO`: the atomic write-then-rename
//!   that kubeadm, plinth itself and most configuration tools use) is complete the moment it
//!   appears, so it is admitted at once.
//! - A file **written in place** (`IN_CREATE` / `IN_MODIFY` / `IN_CLOSE_WRITE`: an editor, `cp`,
//!   `cat >`, a chunked network copy) is admitted only once its content has stopped changing
//!   for the **settle window** (`--manifest-settle-window`, default
//!   [`DEFAULT_SETTLE_WINDOW`]). A close (`IN_CLOSE_WRITE`) is not trusted on its own: a
//!   chunked writer may close and reopen the file between chunks. Until then the file is
//!   reported as a `settling` problem ("waiting for it to stop changing") and the pod it used
//!   to define, if any, keeps running.
//! - A file **found by a relist** without any event (at agent start, or where inotify cannot
//!   see the change) is judged by its own timestamps: unchanged since its mtime for the
//!   settle window, or a status change after its last data write (`ctime > mtime`: renamed
//!   or chmod-ed after it was written, the signature of an atomic write), or content the
//!   agent itself started before (a recorded pod UID, so a restarted agent adopts at once).
//! - A file **sealed** by plinth (its manifests are written with
//!   [`crate::fs::write_atomic_sealed`], which stores the SHA-256 of the complete content in
//!   the `user.plinth.sha256` xattr before the rename) is admitted whenever its content
//!   matches the seal: `plinth init` starts the agent after writing etcd's manifest, and
//!   etcd must not wait for a settle window.
//!
//! "Unchanged" means the same size, mtime, ctime and content hash ([`FileStamp`]). Content
//! that was admitted once is admitted again at once (an identical rewrite or a chmod).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The default settle window for manifests written in place.
pub const DEFAULT_SETTLE_WINDOW: Duration = Duration::from_secs(1);

/// What a manifest file looked like when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time (seconds, nanoseconds since the epoch).
    pub mtime: (i64, i64),
    /// Status change time (seconds, nanoseconds since the epoch).
    pub ctime: (i64, i64),
    /// The first 16 bytes of the content's SHA-256.
    pub hash: [u8; 16],
    /// The file carries plinth's content seal for exactly this content (written complete
    /// by [`crate::fs::write_atomic_sealed`]).
    pub sealed: bool,
}

impl FileStamp {
    /// A stamp from the file's metadata and the bytes read from it.
    pub fn new(meta: &std::fs::Metadata, bytes: &[u8], sealed: bool) -> FileStamp {
        use sha2::{Digest, Sha256};
        use std::os::unix::fs::MetadataExt;
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&Sha256::digest(bytes)[..16]);
        FileStamp {
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            hash,
            sealed,
        }
    }

    /// How long ago the file was last modified (zero for an mtime in the future).
    fn mtime_age(&self, now: SystemTime) -> Duration {
        let (s, ns) = self.mtime;
        let Ok(secs) = u64::try_from(s) else {
            return Duration::MAX;
        };
        let mtime = SystemTime::UNIX_EPOCH + Duration::new(secs, ns.clamp(0, 999_999_999) as u32);
        now.duration_since(mtime).unwrap_or(Duration::ZERO)
    }
}

/// What inotify said about a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEvent {
    /// `IN_MOVED_TO`: the file arrived complete by rename.
    Renamed,
    /// `IN_CREATE`, `IN_MODIFY`, `IN_CLOSE_WRITE`: written in place.
    Written,
    /// Anything else (attributes, removal).
    Other,
}

/// The admission decision for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Apply the file.
    Admit,
    /// Still being written: look again at `until`.
    Wait {
        /// When the file will have been unchanged for the settle window.
        until: Instant,
    },
}

#[derive(Debug, Clone)]
struct Track {
    /// The last stamp seen by a relist.
    stamp: Option<FileStamp>,
    /// Since when `stamp` has been the file's state (as far as the agent knows).
    since: Instant,
    /// The last event was a rename into place (and no write followed).
    renamed: bool,
    /// In-place writes were seen since the last admission or rename.
    written: bool,
    /// The content hash last admitted.
    admitted: Option<[u8; 16]>,
    /// Waiting, until then.
    waiting_until: Option<Instant>,
}

/// Tracks manifest files and decides when each may be applied (see the module docs).
#[derive(Debug)]
pub struct Settle {
    window: Duration,
    files: HashMap<PathBuf, Track>,
}

impl Settle {
    /// A tracker with the given settle window.
    pub fn new(window: Duration) -> Settle {
        Settle {
            window,
            files: HashMap::new(),
        }
    }

    /// The settle window.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn track(&mut self, host: &Path, now: Instant) -> &mut Track {
        self.files.entry(host.to_path_buf()).or_insert(Track {
            stamp: None,
            since: now,
            renamed: false,
            written: false,
            admitted: None,
            waiting_until: None,
        })
    }

    /// Records an inotify event for the file `host`.
    pub fn note(&mut self, host: &Path, event: FileEvent, now: Instant) {
        let t = self.track(host, now);
        match event {
            FileEvent::Renamed => {
                t.renamed = true;
                t.written = false;
                t.stamp = None;
            }
            FileEvent::Written => {
                t.renamed = false;
                t.written = true;
            }
            FileEvent::Other => {}
        }
    }

    /// Decides about the file `host` as just read (`stamp`; `None` when it could not be
    /// read: that error is reported as is). `recorded` is true when the file's pod is one
    /// the agent started before (its UID is in the state dir).
    pub fn check(
        &mut self,
        host: &Path,
        stamp: Option<FileStamp>,
        recorded: bool,
        now: Instant,
        wall: SystemTime,
    ) -> Verdict {
        let window = self.window;
        let Some(stamp) = stamp else {
            // Unreadable: its error is reported as is; nothing to wait for.
            if let Some(t) = self.files.get_mut(host) {
                t.waiting_until = None;
                t.stamp = None;
            }
            return Verdict::Admit;
        };
        let t = self.track(host, now);
        let admit = |t: &mut Track| {
            t.stamp = Some(stamp);
            t.admitted = Some(stamp.hash);
            t.written = false;
            t.waiting_until = None;
            Verdict::Admit
        };
        if t.admitted == Some(stamp.hash) || stamp.sealed {
            return admit(t);
        }
        if t.renamed {
            match t.stamp {
                // Arrived by rename and not changed since: complete.
                None => return admit(t),
                Some(s) if s == stamp => return admit(t),
                // Changed after the rename without an event (yet): treat as written.
                Some(_) => {
                    t.renamed = false;
                    t.written = true;
                }
            }
        }
        if t.stamp != Some(stamp) {
            let first_sighting = t.stamp.is_none() && !t.written;
            t.stamp = Some(stamp);
            t.since = now;
            if first_sighting {
                if recorded || stamp.ctime > stamp.mtime {
                    return admit(t);
                }
                t.since = now.checked_sub(stamp.mtime_age(wall)).unwrap_or(now);
            }
        }
        let until = t.since + window;
        if now >= until {
            return admit(t);
        }
        t.waiting_until = Some(until);
        Verdict::Wait { until }
    }

    /// Forgets every file (the manifest path cannot be listed: nothing to wait for).
    pub fn clear(&mut self) {
        self.files.clear();
    }

    /// Forgets files that are gone.
    pub fn retain(&mut self, present: &BTreeSet<PathBuf>) {
        self.files.retain(|p, _| present.contains(p));
    }

    /// The earliest time a waiting file may be admitted.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.files.values().filter_map(|t| t.waiting_until).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(1);

    fn stamp(content: &str, mtime: i64, ctime: i64) -> FileStamp {
        use sha2::{Digest, Sha256};
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&Sha256::digest(content.as_bytes())[..16]);
        FileStamp {
            len: content.len() as u64,
            mtime: (mtime, 0),
            ctime: (ctime, 0),
            hash,
            sealed: false,
        }
    }

    fn wall(secs: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    #[test]
    fn renamed_in_file_is_admitted_at_once() {
        let mut s = Settle::new(W);
        let t0 = Instant::now();
        let p = Path::new("/m/a.yaml");
        s.note(p, FileEvent::Renamed, t0);
        assert_eq!(
            s.check(p, Some(stamp("a", 100, 100)), false, t0, wall(100)),
            Verdict::Admit
        );
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn file_written_in_place_waits_until_unchanged_for_the_window() {
        let mut s = Settle::new(W);
        let t0 = Instant::now();
        let p = Path::new("/m/a.yaml");
        let ms = Duration::from_millis;
        // Chunks 300 ms apart, each closing the file: never admitted while it grows.
        let mut content = String::new();
        for i in 0..5 {
            content.push_str("chunk\n");
            let now = t0 + ms(300 * i);
            s.note(p, FileEvent::Written, now);
            let v = s.check(p, Some(stamp(&content, 100, 100)), false, now, wall(100));
            assert_eq!(v, Verdict::Wait { until: now + W }, "chunk {i}");
        }
        let last = t0 + ms(1200);
        assert_eq!(s.next_deadline(), Some(last + W));
        assert!(matches!(
            s.check(
                p,
                Some(stamp(&content, 100, 100)),
                false,
                last + ms(999),
                wall(101)
            ),
            Verdict::Wait { .. }
        ));
        assert_eq!(
            s.check(
                p,
                Some(stamp(&content, 100, 100)),
                false,
                last + W,
                wall(101)
            ),
            Verdict::Admit
        );
        assert_eq!(s.next_deadline(), None);
        // The same content again (a chmod, an identical rewrite): at once.
        s.note(p, FileEvent::Written, last + ms(3000));
        assert_eq!(
            s.check(
                p,
                Some(stamp(&content, 104, 104)),
                false,
                last + ms(3000),
                wall(104)
            ),
            Verdict::Admit
        );
        // An edit in place waits again.
        s.note(p, FileEvent::Written, last + ms(4000));
        assert!(matches!(
            s.check(
                p,
                Some(stamp("new", 105, 105)),
                false,
                last + ms(4000),
                wall(105)
            ),
            Verdict::Wait { .. }
        ));
    }

    #[test]
    fn found_by_relist_uses_its_timestamps() {
        let t0 = Instant::now();
        let p = Path::new("/m/a.yaml");
        // Written long ago: settled.
        let mut s = Settle::new(W);
        assert_eq!(
            s.check(p, Some(stamp("a", 100, 100)), false, t0, wall(200)),
            Verdict::Admit
        );
        // Written just now, no rename afterwards: wait for the rest of the window.
        let mut s = Settle::new(W);
        assert!(matches!(
            s.check(p, Some(stamp("a", 200, 200)), false, t0, wall(200)),
            Verdict::Wait { .. }
        ));
        // Written just now, then renamed into place (ctime after mtime): complete.
        let mut s = Settle::new(W);
        assert_eq!(
            s.check(p, Some(stamp("a", 199, 200)), false, t0, wall(200)),
            Verdict::Admit
        );
        // A pod the agent started before (restart, adoption): at once.
        let mut s = Settle::new(W);
        assert_eq!(
            s.check(p, Some(stamp("a", 200, 200)), true, t0, wall(200)),
            Verdict::Admit
        );
        // Sealed by plinth's atomic write (content hash in an xattr): at once.
        let mut s = Settle::new(W);
        let sealed = FileStamp {
            sealed: true,
            ..stamp("a", 200, 200)
        };
        assert_eq!(
            s.check(p, Some(sealed), false, t0, wall(200)),
            Verdict::Admit
        );
    }

    #[test]
    fn no_stale_deadline_once_a_waiting_file_is_unreadable_or_gone() {
        let mut s = Settle::new(W);
        let t0 = Instant::now();
        let p = Path::new("/m/a.yaml");
        s.note(p, FileEvent::Written, t0);
        assert!(matches!(
            s.check(p, Some(stamp("a", 100, 100)), false, t0, wall(100)),
            Verdict::Wait { .. }
        ));
        assert!(s.next_deadline().is_some());
        assert_eq!(s.check(p, None, false, t0, wall(100)), Verdict::Admit);
        assert_eq!(
            s.next_deadline(),
            None,
            "an unreadable file must not leave a deadline"
        );
        s.note(p, FileEvent::Written, t0);
        assert!(matches!(
            s.check(p, Some(stamp("b", 100, 100)), false, t0, wall(100)),
            Verdict::Wait { .. }
        ));
        s.clear();
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn a_change_after_a_rename_without_an_event_waits() {
        let mut s = Settle::new(W);
        let t0 = Instant::now();
        let p = Path::new("/m/a.yaml");
        s.note(p, FileEvent::Renamed, t0);
        assert_eq!(
            s.check(p, Some(stamp("a", 100, 100)), false, t0, wall(100)),
            Verdict::Admit
        );
        s.note(p, FileEvent::Renamed, t0);
        // Read once (half), then it changed before its write events arrived.
        s.files.get_mut(p).unwrap().stamp = Some(stamp("b", 100, 100));
        assert!(matches!(
            s.check(p, Some(stamp("bb", 100, 100)), false, t0, wall(100)),
            Verdict::Wait { .. }
        ));
    }
}
