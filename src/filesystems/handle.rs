//! [`FsFile`]: an open file as the transfer engine sees it. An OS file keeps its
//! descriptor, so binary downloads go through sendfile(2); any other storage plugs in
//! a [`FileData`] and is moved through the transfer's buffer.

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};

/// The contents of an open file that is not an OS file: what a custom
/// [`super::FileSystem`] returns from `open_read`, `open_write` and `create_unique`
/// inside [`FsFile::Custom`].
///
/// Reads and writes happen on the event-loop thread, one buffer (64 KiB by default)
/// at a time, so each call should be quick, unless the filesystem that opened the file
/// says it blocks ([`super::FileSystem::blocking`]): then they run on the server's
/// filesystem threads, a chunk at a time. The file is dropped when the transfer ends,
/// completed or not.
pub trait FileData: Read + Write + Seek + Send {
    /// The current length of the file in bytes (RETR compares a REST offset with it).
    ///
    /// # Errors
    /// When the length cannot be determined.
    fn size(&self) -> io::Result<u64>;

    /// Cuts the file to `len` bytes (`ftruncate(2)`): a STOR after REST ends the file
    /// where the upload ends, so the old file's tail beyond it goes.
    ///
    /// # Errors
    /// The default cannot shorten a file: `Unsupported` when `len` is below
    /// [`FileData::size`], and the REST + STOR ends in 426 rather than leave a file the
    /// client did not send.
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if len >= self.size()? {
            Ok(())
        } else {
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

/// An open file: an OS file, or the contents a custom filesystem serves.
///
/// ```
/// use std::io::{Cursor, Read};
/// use ftpdlib::filesystems::{FileData, FsFile};
///
/// // Any Read + Write + Seek + Send type can be served; here bytes in memory.
/// struct Bytes(Cursor<Vec<u8>>);
/// impl Read for Bytes {
///     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> { self.0.read(buf) }
/// }
/// impl std::io::Write for Bytes {
///     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> { self.0.write(buf) }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
/// impl std::io::Seek for Bytes {
///     fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> { self.0.seek(pos) }
/// }
/// impl FileData for Bytes {
///     fn size(&self) -> std::io::Result<u64> { Ok(self.0.get_ref().len() as u64) }
/// }
///
/// let mut f = FsFile::custom(Bytes(Cursor::new(b"hello".to_vec())));
/// assert_eq!(f.size()?, 5);
/// let mut s = String::new();
/// f.read_to_string(&mut s)?;
/// assert_eq!(s, "hello");
/// # Ok::<(), std::io::Error>(())
/// ```
#[non_exhaustive]
pub enum FsFile {
    /// A file of the OS: downloads in binary mode use sendfile(2) on it.
    Os(File),
    /// Anything else; moved through the transfer's buffer.
    Custom(Box<dyn FileData>),
}

impl FsFile {
    /// Wraps the contents of a custom file.
    pub fn custom(data: impl FileData + 'static) -> FsFile {
        FsFile::Custom(Box::new(data))
    }

    /// The current length of the file in bytes.
    ///
    /// # Errors
    /// The error of `fstat` for an OS file, else that of [`FileData::size`].
    pub fn size(&self) -> io::Result<u64> {
        match self {
            FsFile::Os(f) => f.metadata().map(|m| m.len()),
            FsFile::Custom(c) => c.size(),
        }
    }

    /// Cuts or extends the file to `len` bytes.
    ///
    /// # Errors
    /// The error of `ftruncate` for an OS file, else that of [`FileData::set_len`].
    pub fn set_len(&mut self, len: u64) -> io::Result<()> {
        match self {
            FsFile::Os(f) => f.set_len(len),
            FsFile::Custom(c) => c.set_len(len),
        }
    }

    /// The OS file, if this is one (the transfer engine uses its descriptor).
    pub fn as_os(&self) -> Option<&File> {
        match self {
            FsFile::Os(f) => Some(f),
            FsFile::Custom(_) => None,
        }
    }
}

impl From<File> for FsFile {
    fn from(f: File) -> FsFile {
        FsFile::Os(f)
    }
}

impl fmt::Debug for FsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsFile::Os(file) => f.debug_tuple("Os").field(file).finish(),
            FsFile::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl Read for FsFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            FsFile::Os(f) => f.read(buf),
            FsFile::Custom(c) => c.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            FsFile::Os(f) => f.read_vectored(bufs),
            FsFile::Custom(c) => c.read_vectored(bufs),
        }
    }
}

impl Write for FsFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FsFile::Os(f) => f.write(buf),
            FsFile::Custom(c) => c.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            FsFile::Os(f) => f.write_vectored(bufs),
            FsFile::Custom(c) => c.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            FsFile::Os(f) => f.flush(),
            FsFile::Custom(c) => c.flush(),
        }
    }
}

impl Seek for FsFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            FsFile::Os(f) => f.seek(pos),
            FsFile::Custom(c) => c.seek(pos),
        }
    }
}
