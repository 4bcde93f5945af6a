//! A writer that hands full buffers to a background thread, so that the output's write
//! syscalls (on some machines as costly as hashing the bytes) overlap with the producer's
//! work (reading inputs, hashing, compressing). Memory stays bounded: at most `DEPTH` buffers
//! are in flight, and buffers are recycled.

use crate::io::output::BUF_SIZE;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const DEPTH: usize = 4;

pub struct BackgroundWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<(W, io::Result<()>)>>,
}

impl<W: Write + Send + 'static> BackgroundWriter<W> {
    pub fn new(mut inner: W) -> Self {
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(DEPTH);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 1);
        let worker = std::thread::spawn(move || {
            for mut buf in full_rx {
                if let Err(e) = inner.write_all(&buf) {
                    return (inner, Err(e));
                }
                buf.clear();
                let _ = empty_tx.try_send(buf);
            }
            let r = inner.flush();
            (inner, r)
        });
        BackgroundWriter {
            buf: Vec::with_capacity(BUF_SIZE),
            full: Some(full_tx),
            empty: empty_rx,
            worker: Some(worker),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUF_SIZE));
        let buf = std::mem::replace(&mut self.buf, next);
        let sent = self.full.as_ref().map(|tx| tx.send(buf));
        match sent {
            Some(Ok(())) => Ok(()),
            // The worker stopped early: its own error is reported by `finish`.
            _ => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "output writer stopped",
            )),
        }
    }

    /// Writes out everything and returns the inner writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        let sent = if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        };
        drop(self.full.take());
        let (inner, result) = self
            .worker
            .take()
            .expect("finished once")
            .join()
            .map_err(|_| io::Error::other("output writer thread panicked"))?;
        result?;
        sent?;
        Ok(inner)
    }
}

impl<W: Write + Send + 'static> Write for BackgroundWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BUF_SIZE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BUF_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Data reaches the inner writer by `finish`; nothing to force earlier.
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for BackgroundWriter<W> {
    fn drop(&mut self) {
        drop(self.full.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_every_byte_in_order() {
        let data: Vec<u8> = (0..3 * BUF_SIZE + 12345).map(|i| (i % 251) as u8).collect();
        let mut w = BackgroundWriter::new(Vec::new());
        for chunk in data.chunks(70_001) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.finish().unwrap(), data);
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reports_the_inner_error() {
        let mut w = BackgroundWriter::new(Failing);
        let mut first = Ok(());
        for _ in 0..10 {
            if let Err(e) = w.write_all(&vec![1u8; BUF_SIZE]) {
                first = Err(e);
                break;
            }
        }
        let finished = w.finish().map(drop);
        let err = finished.err().or(first.err()).expect("an error");
        assert!(
            err.to_string().contains("disk full") || err.kind() == io::ErrorKind::BrokenPipe,
            "{err}"
        );
        // `finish` itself must name the real cause.
        let mut w = BackgroundWriter::new(Failing);
        let _ = w.write_all(&[1u8; 10]);
        assert!(w.finish().err().unwrap().to_string().contains("disk full"));
    }
}
