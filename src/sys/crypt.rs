//! crypt(3) through libxcrypt, opened with dlopen(3) the first time a password is hashed
//! or checked: a server with only plain-text or anonymous users never maps it (one shared
//! library less at start-up). Hand-written FFI, kept so on purpose: the system's
//! library is what knows every hash method /etc/shadow may hold (yescrypt, SHA-crypt,
//! bcrypt…), and rustix does not cover libxcrypt.

use std::ffi::{CStr, CString};
use std::io;

use super::invalid_argument;

// libxcrypt is Debian's libcrypt.so.1. `crypt_rn` and `crypt_gensalt_rn` take the size of
// the buffer they write to, so a smaller `struct crypt_data` of another libcrypt can never
// be overrun; both return NULL on failure (never a "*0" failure token).
type CryptRnFn = unsafe extern "C" fn(
    phrase: *const libc::c_char,
    setting: *const libc::c_char,
    data: *mut libc::c_void,
    size: libc::c_int,
) -> *mut libc::c_char;
type CryptGensaltRnFn = unsafe extern "C" fn(
    prefix: *const libc::c_char,
    count: libc::c_ulong,
    rbytes: *const libc::c_char,
    nrbytes: libc::c_int,
    output: *mut libc::c_char,
    output_size: libc::c_int,
) -> *mut libc::c_char;

struct Libcrypt {
    crypt_rn: CryptRnFn,
    crypt_gensalt_rn: CryptGensaltRnFn,
}

/// The library's two entry points, or why they could not be had (kept: every later call
/// reports the same reason).
fn libcrypt() -> Result<&'static Libcrypt, &'static str> {
    static LIBCRYPT: std::sync::OnceLock<Result<Libcrypt, String>> = std::sync::OnceLock::new();
    LIBCRYPT
        .get_or_init(|| {
            let lib = open_libcrypt();
            if let Err(why) = &lib {
                log::error!("cannot use libcrypt.so.1 (crypt(3) passwords): {why}");
            }
            lib
        })
        .as_ref()
        .map_err(String::as_str)
}

fn open_libcrypt() -> Result<Libcrypt, String> {
    fn dlerror() -> String {
        // SAFETY: dlerror returns NULL or a NUL-terminated message owned by libc, read
        // here before any other dl* call on this thread can replace it.
        let e = unsafe { libc::dlerror() };
        if e.is_null() {
            "unknown error".to_owned()
        } else {
            // SAFETY: non-NULL, NUL-terminated (above).
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
        }
    }
    // SAFETY: the name is a NUL-terminated literal; the handle is never closed, so the
    // symbols taken from it stay valid for the life of the process.
    let handle =
        unsafe { libc::dlopen(c"libcrypt.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(dlerror());
    }
    let symbol = |name: &CStr| {
        // SAFETY: `handle` is a live dlopen handle and `name` is NUL-terminated.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if p.is_null() {
            Err(dlerror())
        } else {
            Ok(p)
        }
    };
    let crypt_rn = symbol(c"crypt_rn")?;
    let crypt_gensalt_rn = symbol(c"crypt_gensalt_rn")?;
    // SAFETY: these are libxcrypt's exported functions, whose C prototypes the two
    // function pointer types copy exactly; a data pointer and a function pointer have the
    // same size on every platform dlsym(3) runs on.
    unsafe {
        Ok(Libcrypt {
            crypt_rn: std::mem::transmute::<*mut libc::c_void, CryptRnFn>(crypt_rn),
            crypt_gensalt_rn: std::mem::transmute::<*mut libc::c_void, CryptGensaltRnFn>(
                crypt_gensalt_rn,
            ),
        })
    }
}

/// crypt(3): hashes `phrase` with the method, cost and salt of `setting` (a full hash
/// works as setting, which is how a password is verified). `None` when libcrypt refuses:
/// an unknown or disabled method, a malformed setting, a NUL byte in the phrase.
pub(crate) fn crypt(phrase: &[u8], setting: &str) -> Option<String> {
    let lib = libcrypt().ok()?;
    let phrase = CString::new(phrase).ok()?;
    let setting = CString::new(setting).ok()?;
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    let size = libc::c_int::try_from(data.len()).ok()?;
    // SAFETY: `phrase` and `setting` are NUL-terminated and outlive the call; `data` is a
    // zeroed, writable buffer of exactly `size` bytes, as crypt_rn requires. The result
    // points into `data` (or is NULL).
    let out = unsafe {
        (lib.crypt_rn)(
            phrase.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            size,
        )
    };
    let hash = if out.is_null() {
        None
    } else {
        // SAFETY: non-NULL results are NUL-terminated strings inside `data`, still alive.
        let s = unsafe { CStr::from_ptr(out) };
        Some(String::from_utf8_lossy(s.to_bytes()).into_owned())
    };
    // The buffer held the passphrase: wipe it before it goes back to the allocator.
    data.fill(0);
    std::hint::black_box(&data);
    hash
}

/// crypt_gensalt(3): a setting string for method `prefix` (`$y$`, `$6$`, `$2b$`…) at the
/// default cost, salted with `random` (16 random bytes suit every method).
pub(crate) fn gensalt(prefix: &str, random: &[u8]) -> io::Result<String> {
    let lib = libcrypt().map_err(|why| io::Error::other(format!("libcrypt.so.1: {why}")))?;
    let prefix = CString::new(prefix)?;
    let n = libc::c_int::try_from(random.len()).map_err(|_| invalid_argument())?;
    let mut out = [0u8; CRYPT_GENSALT_OUTPUT_SIZE];
    // SAFETY: `prefix` is NUL-terminated, `random` is readable for `n` bytes and `out` is
    // writable for its full length, which is what we pass as output_size.
    let r = unsafe {
        (lib.crypt_gensalt_rn)(
            prefix.as_ptr(),
            0,
            random.as_ptr().cast(),
            n,
            out.as_mut_ptr().cast(),
            CRYPT_GENSALT_OUTPUT_SIZE as libc::c_int,
        )
    };
    if r.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `r` points to the NUL-terminated setting written into `out`.
    let s = unsafe { CStr::from_ptr(r) };
    Ok(String::from_utf8_lossy(s.to_bytes()).into_owned())
}

const CRYPT_DATA_SIZE: usize = 32768;
const CRYPT_GENSALT_OUTPUT_SIZE: usize = 192;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_verifies_what_gensalt_made() {
        let random = [7u8; 16];
        for prefix in ["$y$", "$6$", "$5$", "$2b$"] {
            let setting = gensalt(prefix, &random).expect(prefix);
            assert!(setting.starts_with(prefix), "{setting}");
            let hash = crypt(b"secret", &setting).expect("hash");
            assert_eq!(crypt(b"secret", &hash).as_deref(), Some(hash.as_str()));
            assert_ne!(crypt(b"secreT", &hash).as_deref(), Some(hash.as_str()));
        }
        assert_eq!(crypt(b"x", "!"), None);
        assert_eq!(crypt(b"x", "*"), None);
        assert_eq!(crypt(b"a\0b", "$6$salt"), None);
        assert!(gensalt("$nope$", &random).is_err());
    }
}
