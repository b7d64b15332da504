//! Requests that write files: exports (run on a thread of their own, reading through a
//! second, read-only store connection) and the checks that keep them off the data dir's own
//! files.

use super::*;

impl Core {
    /// Refuses an output path that would replace one of the data dir's own files (the key, the
    /// store and its copies, the lock, the socket, a kept key).
    pub(super) fn refuse_own_files(&self, path: &Path) -> Result<(), ApiError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let own = ["identity.key", STORE_FILE, "node.lock", "control.sock"]
            .iter()
            .any(|f| name.starts_with(f));
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let same_dir = match (parent.canonicalize(), self.data_dir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if own && same_dir {
            return Err(invalid(format!(
                "{}: that would overwrite this node's own data; choose another file",
                path.display()
            )));
        }
        Ok(())
    }

    /// Checks an export request: the room name, and that `path` is not one of our own files.
    pub(super) fn export_room(
        &self,
        room: Option<String>,
        path: &str,
    ) -> Result<Option<String>, ApiError> {
        self.refuse_own_files(Path::new(path))?;
        room.map(|r| self.resolve_room(&r)).transpose()
    }

    /// Writes an export on a thread of its own with a read-only connection, so a large export
    /// never holds up messages arriving meanwhile; reports [`EngineEvent::ExportProgress`] and
    /// answers `reply` when the file is complete.
    pub(super) fn start_export(
        &mut self,
        room: Option<String>,
        path: String,
        format: ExportFormat,
        reply: oneshot::Sender<Result<Value, ApiError>>,
    ) {
        let room = match self.export_room(room, &path) {
            Ok(room) => room,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let db = self.data_dir.join(STORE_FILE);
        let events = self.events.clone();
        // JSONL exports end with a manifest signed by this node (removed, added and reordered
        // lines are then detectable).
        let key = self.key.clone();
        // Private rooms are exported as this member reads them (beside the signed ciphertext).
        let reader = self.export_reader();
        let store_key = self.lock.as_ref().map(|l| l.store_key.clone());
        let span = tracing::info_span!("export", path = %path);
        // Counted while it runs: the store's encryption is not switched under a reader.
        let running = ExportGuard::new(&self.exports);
        let spawned = std::thread::Builder::new()
            .name("dn-export".into())
            .spawn(move || {
                let _running = running;
                let _g = span.enter();
                let started = Instant::now();
                let mut report = |done, total| {
                    let _ = events.send(EngineEvent::ExportProgress {
                        path: path.clone(),
                        done,
                        total,
                    });
                };
                let r = export::export_file_signed_with_key(
                    &db,
                    store_key.as_ref(),
                    room.as_deref(),
                    Path::new(&path),
                    format,
                    Some(&key),
                    Some(&|m: &Message| reader.read(m)),
                    &mut report,
                );
                match &r {
                    Ok(s) => info!(
                        messages = s.messages,
                        ms = started.elapsed().as_millis() as u64,
                        "export written"
                    ),
                    Err(e) => warn!("export failed: {}", e.message),
                }
                let _ = reply.send(r.and_then(Self::to_value));
            });
        if let Err(e) = spawned {
            // The closure (and `reply` with it) is gone: the caller sees "engine stopped".
            warn!("cannot start the export thread: {e}");
        }
    }
}

/// Counts one export thread for as long as it lives (see `Core::exports`).
pub(super) struct ExportGuard(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl ExportGuard {
    pub(super) fn new(count: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ExportGuard(count.clone())
    }
}

impl Drop for ExportGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
