//! Hashed passwords: verifying against crypt(3) strings and making new ones, through the
//! system's libcrypt (libxcrypt on Debian), so the methods are the system's own.

use std::io;

use super::constant_time_eq;
use crate::sys;

/// [`hash_password`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The system's random source (getrandom(2)) could not be read.
    #[error("reading random bytes for a salt: {0}")]
    Random(#[source] io::Error),
    /// libcrypt supports none of yescrypt and sha512-crypt.
    #[error("libcrypt offers neither yescrypt nor sha512-crypt: {0}")]
    NoMethod(#[source] io::Error),
    /// The password contains a NUL byte, which crypt(3) cannot take.
    #[error("the password contains a NUL byte")]
    Nul,
}

/// Hashes `password` for [`super::DummyAuthorizer::add_user_hashed`] or a users file:
/// yescrypt (`$y$`) where libcrypt has it, else sha512-crypt (`$6$`), at the method's
/// default cost, with a salt made from 16 bytes of the system's random source.
///
/// Hashing is deliberately slow (tens of milliseconds for yescrypt); every login of a
/// hashed user pays it once, on the event loop thread.
///
/// # Errors
/// [`HashError`]: no randomness, no supported method, or a NUL in the password.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    if password.contains('\0') {
        return Err(HashError::Nul);
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| HashError::Random(e.into()))?;
    let setting = sys::gensalt("$y$", &random)
        .or_else(|_| sys::gensalt("$6$", &random))
        .map_err(HashError::NoMethod)?;
    sys::crypt(password.as_bytes(), &setting)
        .ok_or_else(|| HashError::NoMethod(io::Error::from(io::ErrorKind::Unsupported)))
}

/// Whether `given` hashes to `hash` under `hash`'s own method and salt. The comparison of
/// the two hashes takes constant time; an unusable hash never matches.
pub(crate) fn verify(given: &str, hash: &str) -> bool {
    match sys::crypt(given.as_bytes(), hash) {
        Some(computed) => constant_time_eq(computed.as_bytes(), hash.as_bytes()),
        None => false,
    }
}

/// Whether libcrypt accepts `hash` as a setting, i.e. some password can match it.
/// Locked (`!…`, `*`) and empty entries are not usable.
pub(crate) fn is_usable_hash(hash: &str) -> bool {
    hash.starts_with('$') && sys::crypt(b"", hash).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("p4ss word").unwrap();
        assert!(h.starts_with("$y$") || h.starts_with("$6$"), "{h}");
        assert!(is_usable_hash(&h));
        assert!(verify("p4ss word", &h));
        assert!(!verify("p4ss wor", &h));
        assert!(!verify("", &h));
        // salts differ
        assert_ne!(h, hash_password("p4ss word").unwrap());
        assert!(matches!(hash_password("a\0b"), Err(HashError::Nul)));
    }

    #[test]
    fn unusable_hashes() {
        for h in ["", "!", "*", "!$6$abc$def", "12345", "$nope$x$y"] {
            assert!(!is_usable_hash(h), "{h:?}");
            assert!(!verify("", h), "{h:?}");
            assert!(!verify(h, h), "{h:?}");
        }
    }

    #[test]
    fn known_vectors() {
        // sha512-crypt from the glibc test suite ("Hello world!", salt "saltstring").
        let h = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu\
                 esI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        assert!(verify("Hello world!", h));
        assert!(!verify("Hello world?", h));
        // sha256-crypt (as `openssl passwd -5` makes it).
        let h = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";
        assert!(verify("Hello world!", h));
    }
}
