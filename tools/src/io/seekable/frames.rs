//! A blob made of independently compressed frames (gzip members or zstd frames), compressed
//! on every thread the layer may use.
//!
//! Frames are at most `FRAME_MAX` bytes: each one is compressed whole by a worker with a fresh
//! state (so its bytes are a function of its input and the level), and a writer thread puts
//! them into the blob in order. A large file's zstd frame is instead streamed through
//! libzstd's multi-threaded mode, whose output does not depend on the number of workers
//! either (see `io::compress`). So the blob never depends on the thread count.
//!
//! Offsets are only known once the frames before them are compressed: `close` gives a
//! `Boundary` (the index of the frame that starts there), which the drained blob turns into an
//! offset when the TOC is written.

use super::Format;
use crate::io::compress::{Codec, Compression, Compressor};
use crate::io::pgzip::ParallelGzip;
use crate::oci::digest::{Digest, HashingWriter};
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Largest frame compressed whole; a zstd file content this large or larger is streamed.
pub const FRAME_MAX: usize = 4 << 20;
/// Bytes a streamed frame hands to the writer thread at a time.
const STREAM_PIECE: usize = 256 << 10;

/// Where a frame starts: the number of frames before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary(pub u64);

/// Compresses one frame on its own: deterministic in (format, level, data).
fn compress_frame(format: Format, level: i32, data: &[u8]) -> io::Result<Vec<u8>> {
    let out = Vec::with_capacity(data.len() / 2 + 64);
    match format {
        // One member; on one thread, ParallelGzip compresses inline.
        Format::Estargz => {
            let mut g = ParallelGzip::new(level as u32, 1, out)?;
            g.write_all(data)?;
            g.finish()
        }
        Format::ZstdChunked => {
            let mut z = super::zstd_frame(out, level)?;
            z.write_all(data)?;
            z.finish()
        }
    }
}

/// What the writer thread writes next, in order.
enum Item {
    /// A frame a worker compresses.
    Frame(Receiver<io::Result<Vec<u8>>>),
    /// A streamed frame, piece by piece until the sender is dropped.
    Stream(Receiver<Vec<u8>>),
}

/// What the writer thread gives back: the blob, and each frame's compressed size.
type Written<W> = io::Result<(HashingWriter<W>, Vec<u64>)>;

struct Job {
    data: Vec<u8>,
    done: SyncSender<io::Result<Vec<u8>>>,
}

enum Engine<W: Write + Send + 'static> {
    /// One thread: frames are compressed and written by the caller.
    Inline {
        /// The blob (lent to a streamed frame's encoder while it runs).
        out: Option<HashingWriter<W>>,
        lens: Vec<u64>,
    },
    Threads {
        jobs: Option<SyncSender<Job>>,
        order: Option<SyncSender<Item>>,
        workers: Vec<JoinHandle<()>>,
        writer: Option<JoinHandle<Written<W>>>,
    },
}

/// A frame being streamed: libzstd's multi-threaded encoder, into the blob (one thread) or
/// into the writer thread's queue.
enum Streaming<W: Write + Send + 'static> {
    /// The encoder, and the blob's size when the frame started.
    Inline(Compressor<HashingWriter<W>>, u64),
    Threads(Compressor<PieceSender>),
}

pub struct Frames<W: Write + Send + 'static> {
    format: Format,
    level: i32,
    threads: usize,
    buf: Vec<u8>,
    streaming: Option<Streaming<W>>,
    /// Frames handed on so far.
    count: u64,
    engine: Engine<W>,
    /// sha256 and count of every uncompressed byte written.
    diff: Sha256,
    pub uncompressed: u64,
}

impl<W: Write + Send + 'static> Frames<W> {
    pub fn new(format: Format, level: i32, threads: usize, w: W) -> Frames<W> {
        let out = HashingWriter::new(w);
        let engine = if threads <= 1 {
            Engine::Inline {
                out: Some(out),
                lens: Vec::new(),
            }
        } else {
            let (jobs_tx, jobs_rx) = sync_channel::<Job>(threads);
            let jobs_rx = Arc::new(Mutex::new(jobs_rx));
            let workers = (0..threads)
                .map(|_| {
                    let jobs = Arc::clone(&jobs_rx);
                    std::thread::spawn(move || {
                        while let Ok(Ok(job)) = jobs.lock().map(|rx| rx.recv()) {
                            // The writer may have stopped on an error; it reports that one.
                            let _ = job.done.send(compress_frame(format, level, &job.data));
                        }
                    })
                })
                .collect();
            let (order_tx, order_rx) = sync_channel::<Item>(threads);
            let writer = std::thread::spawn(move || {
                let mut out = out;
                let mut lens = Vec::new();
                for item in order_rx {
                    let before = out.count();
                    match item {
                        Item::Frame(rx) => {
                            let frame = rx
                                .recv()
                                .map_err(|_| io::Error::other("a compression thread stopped"))??;
                            out.write_all(&frame)?;
                        }
                        Item::Stream(rx) => {
                            for piece in rx {
                                out.write_all(&piece)?;
                            }
                        }
                    }
                    lens.push(out.count() - before);
                }
                Ok((out, lens))
            });
            Engine::Threads {
                jobs: Some(jobs_tx),
                order: Some(order_tx),
                workers,
                writer: Some(writer),
            }
        };
        Frames {
            format,
            level,
            threads: threads.max(1),
            buf: Vec::new(),
            streaming: None,
            count: 0,
            engine,
            diff: Sha256::new(),
            uncompressed: 0,
        }
    }

    /// Compresses `data` into the open frame; a buffered frame is closed at `FRAME_MAX`.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_inner(data).map_err(|e| self.why_stopped(e))
    }

    fn write_inner(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.diff.update(data);
        self.uncompressed += data.len() as u64;
        if let Some(s) = &mut self.streaming {
            return match s {
                Streaming::Inline(c, _) => c.write_all(data),
                Streaming::Threads(c) => c.write_all(data),
            };
        }
        while !data.is_empty() {
            let n = (FRAME_MAX - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == FRAME_MAX {
                self.close_inner()?;
            }
        }
        Ok(())
    }

    /// The next frame (until `close`) is a large file's content, streamed through libzstd's
    /// multi-threaded mode (zstd only).
    pub fn stream(&mut self) -> io::Result<()> {
        self.stream_inner().map_err(|e| self.why_stopped(e))
    }

    fn stream_inner(&mut self) -> io::Result<()> {
        debug_assert_eq!(self.format, Format::ZstdChunked);
        self.close_inner()?;
        let codec = Codec::new(Compression::Zstd, Some(self.level), Some(self.threads))
            .map_err(io::Error::other)?;
        self.streaming = Some(match &mut self.engine {
            Engine::Inline { out, .. } => {
                let blob = out.take().expect("the blob is not lent");
                let start = blob.count();
                Streaming::Inline(Compressor::new(codec, blob)?, start)
            }
            Engine::Threads { order, .. } => {
                let (tx, rx) = sync_channel(4);
                send(order, Item::Stream(rx))?;
                Streaming::Threads(Compressor::new(codec, PieceSender::new(tx))?)
            }
        });
        Ok(())
    }

    /// Ends the open frame, if any; returns where the next one starts.
    pub fn close(&mut self) -> io::Result<Boundary> {
        self.close_inner().map_err(|e| self.why_stopped(e))
    }

    /// A send to the writer thread fails only once it has stopped, on an error of its own
    /// (the blob's writer failed: a full disk, a closed pipe): that error, not the failed send,
    /// is what the caller should see.
    fn why_stopped(&mut self, err: io::Error) -> io::Error {
        let stopped = err.get_ref().is_some_and(|e| e.is::<WriterStopped>());
        let Engine::Threads { writer, .. } = &mut self.engine else {
            return err;
        };
        if !stopped {
            return err;
        }
        self.streaming = None;
        match writer.take().map(JoinHandle::join) {
            Some(Ok(Err(cause))) => cause,
            Some(Err(_)) => io::Error::other("the blob writer panicked"),
            _ => err,
        }
    }

    fn close_inner(&mut self) -> io::Result<Boundary> {
        if let Some(s) = self.streaming.take() {
            match (s, &mut self.engine) {
                (Streaming::Inline(c, start), Engine::Inline { out, lens }) => {
                    let blob = c.finish()?;
                    lens.push(blob.count() - start);
                    *out = Some(blob);
                }
                (Streaming::Threads(c), _) => c.finish()?.finish()?,
                _ => unreachable!("a stream belongs to its engine"),
            }
            self.count += 1;
        } else if !self.buf.is_empty() {
            let data = std::mem::take(&mut self.buf);
            match &mut self.engine {
                Engine::Inline { out, lens } => {
                    let frame = compress_frame(self.format, self.level, &data)?;
                    out.as_mut()
                        .expect("the blob is not lent")
                        .write_all(&frame)?;
                    lens.push(frame.len() as u64);
                }
                Engine::Threads { jobs, order, .. } => {
                    let (done_tx, done_rx) = sync_channel(1);
                    send(order, Item::Frame(done_rx))?;
                    send(
                        jobs,
                        Job {
                            data,
                            done: done_tx,
                        },
                    )?;
                }
            }
            self.count += 1;
        }
        Ok(Boundary(self.count))
    }

    /// Waits for every frame to be written: then offsets are known.
    pub fn drain(mut self) -> io::Result<Drained<W>> {
        self.close()?;
        let (out, lens) = match self.engine {
            Engine::Inline { out, lens } => (out.expect("the blob is not lent"), lens),
            Engine::Threads {
                mut jobs,
                mut order,
                workers,
                mut writer,
            } => {
                drop(jobs.take());
                drop(order.take());
                for w in workers {
                    let _ = w.join();
                }
                writer
                    .take()
                    .ok_or_else(|| io::Error::other(WriterStopped))?
                    .join()
                    .map_err(|_| io::Error::other("the blob writer panicked"))??
            }
        };
        let mut starts = Vec::with_capacity(lens.len() + 1);
        let mut at = 0;
        starts.push(0);
        for len in lens {
            at += len;
            starts.push(at);
        }
        Ok(Drained {
            format: self.format,
            level: self.level,
            out,
            starts,
            diff: self.diff,
            uncompressed: self.uncompressed,
        })
    }
}

/// The error of a send to the writer thread after it stopped (`Frames::why_stopped` finds out why).
#[derive(Debug)]
struct WriterStopped;

impl std::fmt::Display for WriterStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the blob writer stopped")
    }
}

impl std::error::Error for WriterStopped {}

fn send<T>(tx: &Option<SyncSender<T>>, item: T) -> io::Result<()> {
    tx.as_ref()
        .expect("open until drained")
        .send(item)
        .map_err(|_| io::Error::other(WriterStopped))
}

/// The blob after every frame is written: offsets, and what goes after the frames.
pub struct Drained<W: Write + Send + 'static> {
    format: Format,
    level: i32,
    out: HashingWriter<W>,
    starts: Vec<u64>,
    diff: Sha256,
    pub uncompressed: u64,
}

impl<W: Write + Send + 'static> Drained<W> {
    /// The blob offset of a boundary.
    pub fn offset(&self, b: Boundary) -> u64 {
        self.starts[b.0 as usize]
    }

    /// Where the next byte goes.
    pub fn end(&self) -> u64 {
        self.out.count()
    }

    /// One more frame, compressed here (eStargz's TOC).
    pub fn write_frame(&mut self, data: &[u8]) -> io::Result<()> {
        self.diff.update(data);
        self.uncompressed += data.len() as u64;
        let frame = compress_frame(self.format, self.level, data)?;
        self.out.write_all(&frame)
    }

    /// Bytes as they are (footers, skippable frames).
    pub fn write_raw(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    pub fn finish(self, annotations: super::Annotations) -> io::Result<super::Sealed<W>> {
        let (inner, digest, size) = self.out.finish();
        Ok(super::Sealed {
            inner,
            diff_id: Digest(self.diff.finalize().into()),
            digest,
            size,
            annotations,
        })
    }
}

/// A `Write` that hands what it is given to the writer thread in pieces.
pub struct PieceSender {
    tx: Option<SyncSender<Vec<u8>>>,
    piece: Vec<u8>,
}

impl PieceSender {
    fn new(tx: SyncSender<Vec<u8>>) -> PieceSender {
        PieceSender {
            tx: Some(tx),
            piece: Vec::with_capacity(STREAM_PIECE),
        }
    }

    fn hand_on(&mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(STREAM_PIECE));
        let tx = self.tx.as_ref().expect("open until finished");
        tx.send(piece).map_err(|_| io::Error::other(WriterStopped))
    }

    /// Hands the rest on and ends the stream.
    fn finish(mut self) -> io::Result<()> {
        self.hand_on()?;
        drop(self.tx.take());
        Ok(())
    }
}

impl Write for PieceSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.piece.extend_from_slice(buf);
        if self.piece.len() >= STREAM_PIECE {
            self.hand_on()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
