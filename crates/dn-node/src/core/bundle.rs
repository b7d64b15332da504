//! Bundles in the core: writing one (on a thread of its own with a read-only connection, like
//! the exports) and importing one. An import is a job the core runs a chunk at a time
//! (at most [`IMPORT_CHUNK`] records or [`IMPORT_TURN`] per turn of its loop, one store
//! transaction each), so a large bundle never holds up the network or the user for long. Every record is verified and then
//! handed to the protocol as [`Input::Imported`]: the same admission as a message from a peer
//! (blocklist, rooms, envelopes, quotas, clock rule), stored, shown and spread to this node's
//! peers like one.

use std::io::Read;

use dn_proto::bundle::{BundleError, Decoder, Step};

use super::*;
use crate::bundle::Selection;

/// Most records handled per turn of the core loop.
pub(super) const IMPORT_CHUNK: usize = 1000;
/// A turn also ends after this long, so that frames and requests waiting meanwhile are served
/// within about this time however slow the disk or the signature checks are.
const IMPORT_TURN: Duration = Duration::from_millis(50);
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Progress of the bundles being written or imported, by path: shared with the export threads,
/// reported as [`EngineEvent::BundleProgress`] and answered to [`Request::BundleProgress`].
#[derive(Clone, Default)]
pub(super) struct Progress(std::sync::Arc<std::sync::Mutex<HashMap<String, BundleProgressView>>>);

impl Progress {
    /// Records `p` and sends it as an event; `finished` forgets the path afterwards.
    fn report(
        &self,
        events: &broadcast::Sender<EngineEvent>,
        p: BundleProgressView,
        finished: bool,
    ) {
        if let Ok(mut m) = self.0.lock() {
            if finished {
                m.remove(&p.path);
            } else {
                m.insert(p.path.clone(), p.clone());
            }
        }
        let _ = events.send(EngineEvent::BundleProgress {
            path: p.path,
            import: p.import,
            records: p.records,
            done: p.done,
            total: p.total,
        });
    }

    /// Forgets `path` (its export or import ended).
    fn forget(&self, path: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(path);
        }
    }

    /// The bundle of `path` being written or imported, if any.
    pub(super) fn get(&self, path: &str) -> Option<BundleProgressView> {
        self.0.lock().ok().and_then(|m| m.get(path).cloned())
    }
}

/// A bundle being imported.
pub(super) struct ImportJob {
    file: std::fs::File,
    size: u64,
    read: u64,
    decoder: Decoder,
    header: bool,
    report: BundleImportReport,
    reply: Reply,
    /// When progress was last reported (`None`: not yet; the first chunk reports).
    last_progress: Option<Instant>,
}

impl Core {
    /// Starts writing a bundle on its own thread; answers `reply` when the file is complete.
    pub(super) fn start_bundle_export(
        &mut self,
        path: String,
        rooms: Option<Vec<String>>,
        since_ms: Option<u64>,
        reply: Reply,
    ) {
        let checked = self.refuse_own_files(Path::new(&path)).and_then(|()| {
            rooms
                .map(|rs| {
                    let mut v = rs
                        .iter()
                        .map(|r| self.resolve_room(r))
                        .collect::<Result<Vec<_>, _>>()?;
                    v.sort();
                    v.dedup();
                    Ok(v)
                })
                .transpose()
        });
        let rooms = match checked {
            Ok(r) => r,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let db = self.data_dir.join(STORE_FILE);
        let store_key = self.lock.as_ref().map(|l| l.store_key.clone());
        let events = self.events.clone();
        let creator = self.id;
        let progress = self.bundles.clone();
        let running = files::ExportGuard::new(&self.exports);
        let span = tracing::info_span!("bundle_export", path = %path);
        let spawned = std::thread::Builder::new()
            .name("dn-bundle".into())
            .spawn(move || {
                let _running = running;
                let _g = span.enter();
                let r = Store::open_reader_with_key(&db, store_key.as_ref())
                    .map_err(store_err)
                    .and_then(|store| {
                        crate::bundle::write_bundle(
                            &store,
                            &Selection { rooms, since_ms },
                            Path::new(&path),
                            creator,
                            now_ms(),
                            &mut |done, total| {
                                let p = BundleProgressView {
                                    path: path.clone(),
                                    import: false,
                                    records: done,
                                    done,
                                    total,
                                };
                                progress.report(&events, p, false);
                            },
                        )
                    });
                progress.forget(&path);
                match &r {
                    Ok(s) => info!(messages = s.messages, bytes = s.bytes, "bundle written"),
                    Err(e) => warn!("bundle export failed: {}", e.message),
                }
                let _ = reply.send(r.and_then(Self::to_value));
            });
        if let Err(e) = spawned {
            warn!("cannot start the bundle thread: {e}");
        }
    }

    /// Starts importing the bundle at `path` (one import at a time); `reply` gets the report
    /// when it is done.
    pub(super) fn start_bundle_import(&mut self, path: String, reply: Reply) {
        if self.import.is_some() {
            let _ = reply.send(Err(ApiError::new(
                ErrorCode::Busy,
                "another bundle is being imported; try again when it is done",
            )));
            return;
        }
        // Only a regular file: reading a pipe or a device could block the core. Checked on
        // the file opened (not the path, which could change in between), and opened without
        // waiting, so even opening a FIFO returns at once.
        let opened = open_nonblocking(&path).and_then(|f| {
            let m = f.metadata()?;
            if !m.is_file() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file",
                ));
            }
            Ok((f, m.len()))
        });
        let (file, size) = match opened {
            Ok(x) => x,
            Err(e) => {
                let code = match e.kind() {
                    std::io::ErrorKind::NotFound => ErrorCode::NotFound,
                    std::io::ErrorKind::InvalidInput => ErrorCode::InvalidInput,
                    _ => ErrorCode::Io,
                };
                let _ = reply.send(Err(ApiError::new(code, format!("{path}: {e}"))));
                return;
            }
        };
        info!(%path, size, "importing a bundle");
        self.import = Some(ImportJob {
            file,
            size,
            read: 0,
            decoder: Decoder::new(),
            header: false,
            report: BundleImportReport {
                path,
                total: 0,
                imported: 0,
                duplicates: 0,
                invalid: 0,
                refused: 0,
                truncated: false,
                checksum_ok: false,
                problem: None,
                creator: None,
            },
            reply,
            last_progress: None,
        });
    }

    /// Whether an import is waiting for its next chunk (the loop then does not sleep).
    pub(super) fn importing(&self) -> bool {
        self.import.is_some()
    }

    /// Imports the next chunk of records of the running import, if any, in one store
    /// transaction. Returns true while the import has more to do.
    pub fn import_step(&mut self) -> bool {
        let Some(mut job) = self.import.take() else {
            return false;
        };
        self.begin_group();
        let started = Instant::now();
        let mut n = 0;
        let imported_before = job.report.imported;
        let mut done = loop {
            if n >= IMPORT_CHUNK || started.elapsed() >= IMPORT_TURN {
                break false;
            }
            match job.decoder.step() {
                Step::NeedMore => {
                    let mut buf = vec![0u8; READ_CHUNK];
                    match job.file.read(&mut buf) {
                        Ok(0) => break true,
                        Ok(k) => {
                            job.read += k as u64;
                            job.decoder.push(buf.get(..k).unwrap_or(&[]));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            job.report.problem = Some(format!("reading the file: {e}"));
                            break true;
                        }
                    }
                }
                Step::Header(h) => {
                    job.header = true;
                    job.report.creator = Some(h.creator.to_hex());
                }
                Step::Record(r) => {
                    n += 1;
                    job.report.total += 1;
                    self.import_record(r, &mut job.report);
                }
                Step::End { .. } => {}
                Step::Corrupt(e) => {
                    job.report.problem = Some(e.to_string());
                    break true;
                }
            }
        };
        if !self.commit_group() {
            // Nothing of this chunk is stored: say so, and stop (importing the file again
            // later brings exactly what is missing; duplicates are skipped).
            let lost = job.report.imported - imported_before;
            job.report.imported = imported_before;
            job.report.refused += lost;
            job.report.problem = Some(format!(
                "writing to the store failed ({lost} messages of the last part not stored;                  free some disk space and import the file again)"
            ));
            done = true;
        }
        let due = job
            .last_progress
            .is_none_or(|t| t.elapsed() >= crate::bundle::PROGRESS_INTERVAL);
        if done || due {
            job.last_progress = Some(Instant::now());
            let p = BundleProgressView {
                path: job.report.path.clone(),
                import: true,
                records: job.report.total,
                done: if done {
                    job.size.max(job.read)
                } else {
                    job.read
                },
                total: job.size.max(job.read),
            };
            self.bundles.report(&self.events, p, done);
        }
        if !done {
            self.import = Some(job);
            return true;
        }
        let outcome = job.decoder.finish();
        job.report.truncated = outcome.truncated && job.report.problem.is_none();
        job.report.checksum_ok = outcome.checksum_ok;
        if job.report.truncated {
            job.report.problem = Some("the file ends before the end of the bundle".into());
        }
        let r = &job.report;
        let answer = if !job.header {
            Err(ApiError::new(
                ErrorCode::InvalidInput,
                match r.problem.as_deref() {
                    Some(p) if !r.truncated && p != BundleError::NotABundle.to_string() => {
                        format!("{}: {p}", r.path)
                    }
                    _ => format!("{}: not a DisasterNet bundle", r.path),
                },
            ))
        } else {
            info!(
                total = r.total,
                imported = r.imported,
                duplicates = r.duplicates,
                invalid = r.invalid,
                refused = r.refused,
                truncated = r.truncated,
                checksum_ok = r.checksum_ok,
                "bundle imported"
            );
            Self::to_value(&job.report)
        };
        self.status_dirty = true;
        let _ = job.reply.send(answer);
        false
    }

    /// One record: verified, skipped when already here, else admitted by the protocol.
    fn import_record(
        &mut self,
        r: Result<Message, dn_proto::ProtoError>,
        report: &mut BundleImportReport,
    ) {
        let Ok(msg) = r else {
            report.invalid += 1;
            return;
        };
        if msg.verify().is_err() {
            report.invalid += 1;
            return;
        }
        match dn_proto::Storage::has(&self.store, &msg.id()) {
            Ok(true) => {
                report.duplicates += 1;
                return;
            }
            Ok(false) => {}
            Err(e) => {
                warn!("bundle import: {e}");
                report.refused += 1;
                return;
            }
        }
        let now = self.time();
        let outs = self
            .proto
            .handle(&mut self.store, Input::Imported(msg), now);
        if outs.iter().any(|o| matches!(o, Output::Stored { .. })) {
            report.imported += 1;
        } else {
            report.refused += 1;
        }
        self.apply(outs);
    }
}

/// Opens `path` for reading without blocking on a FIFO's missing writer (Unix `O_NONBLOCK`;
/// reads from a regular file are unaffected by it).
fn open_nonblocking(path: &str) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.custom_flags(libc::O_NONBLOCK);
    }
    o.open(path)
}
