//! PAM authentication (cargo feature "pam"): one pam_start / pam_authenticate /
//! pam_acct_mgmt / pam_end transaction per login, answered by an in-memory conversation.
//! Hand-written FFI, kept so on purpose: the server uses six libpam calls, a conversation
//! that answers from memory and a fail-delay hook that does nothing (PAM must not sleep on
//! the event loop), and rustix does not cover libpam.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

#[repr(C)]
pub(super) struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
pub(super) struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int;

#[repr(C)]
pub(super) struct PamConv {
    conv: ConvFn,
    appdata: *mut c_void,
}

// Linked by file name: Debian ships libpam.so.0 without the libpam.so development
// link unless libpam0g-dev is installed.
#[link(name = "libpam.so.0", kind = "dylib", modifiers = "+verbatim")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_RHOST: c_int = 4;
const PAM_FAIL_DELAY: c_int = 10;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

/// What the conversation answers: the password to hidden prompts, the user name to
/// visible ones.
struct Answers {
    user: CString,
    password: CString,
}

/// The PAM conversation: answers each prompt from `Answers`. Responses are
/// allocated with calloc/strdup because PAM frees them with free().
extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let Ok(n) = usize::try_from(num_msg) else {
        return PAM_CONV_ERR;
    };
    if n == 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: calloc with a non-zero count; the memory is handed to PAM, which
    // frees it (and each non-NULL `resp` inside) with free().
    let out = unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if out.is_null() {
        return PAM_BUF_ERR;
    }
    // SAFETY: `appdata` is the `Answers` that `authenticate` passed in `PamConv`,
    // alive for the whole PAM transaction that calls this function.
    let answers = unsafe { &*appdata.cast::<Answers>() };
    for i in 0..n {
        // SAFETY: Linux-PAM passes `msg` as an array of `n` pointers to messages
        // (the layout both Linux-PAM and OpenPAM agree on for this indexing).
        let m = unsafe { &**msg.add(i) };
        let answer = match m.msg_style {
            PAM_PROMPT_ECHO_OFF => Some(&answers.password),
            PAM_PROMPT_ECHO_ON => Some(&answers.user),
            _ => None, // error and info texts need no answer
        };
        if let Some(a) = answer {
            // SAFETY: `a` is NUL-terminated; strdup allocates with malloc, freed by
            // PAM; `out` has room for `n` zeroed responses.
            unsafe {
                let dup = libc::strdup(a.as_ptr());
                if dup.is_null() {
                    free_responses(out, i);
                    return PAM_BUF_ERR;
                }
                (*out.add(i)).resp = dup;
            }
        }
    }
    // SAFETY: `resp` is PAM's out-pointer for the response array.
    unsafe { *resp = out };
    PAM_SUCCESS
}

/// Frees the first `filled` answers and the array (on a failed conversation).
///
/// # Safety
/// `out` must come from calloc in `converse`, with `filled` entries set by strdup.
unsafe fn free_responses(out: *mut PamResponse, filled: usize) {
    for j in 0..filled {
        let r = (*out.add(j)).resp;
        if !r.is_null() {
            // Wipe the copy of the password before freeing it.
            libc::memset(r.cast(), 0, libc::strlen(r));
            libc::free(r.cast());
        }
    }
    libc::free(out.cast());
}

/// A fail-delay hook that does nothing: the FTP server answers a failed login after
/// its own non-blocking delay, so PAM must not sleep on the event loop.
extern "C" fn no_delay(_status: c_int, _usec: libc::c_uint, _appdata: *mut c_void) {}

/// pam_authenticate then pam_acct_mgmt for `user` with `password` through PAM
/// service `service`; the error carries pam_strerror's text.
pub(crate) fn authenticate(
    service: &str,
    user: &str,
    password: &str,
    rhost: Option<&str>,
) -> Result<(), String> {
    let service = CString::new(service).map_err(|_| "NUL in the service name")?;
    let c_user = CString::new(user).map_err(|_| "NUL in the user name")?;
    let answers = Answers {
        user: c_user.clone(),
        password: CString::new(password).map_err(|_| "NUL in the password")?,
    };
    let conv = PamConv {
        conv: converse,
        appdata: ptr::from_ref(&answers).cast_mut().cast(),
    };
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: the strings are NUL-terminated; `conv` and the `answers` it points to
    // outlive the transaction, which ends with pam_end below; `pamh` is written.
    let rc = unsafe { pam_start(service.as_ptr(), c_user.as_ptr(), &conv, &mut pamh) };
    if rc != PAM_SUCCESS || pamh.is_null() {
        return Err(format!("pam_start failed ({rc})"));
    }
    let rhost = rhost.and_then(|h| CString::new(h).ok());
    // SAFETY: `pamh` is a live handle; PAM copies string items; the delay hook is a
    // valid function pointer with the signature PAM_FAIL_DELAY expects.
    let mut rc = unsafe {
        if let Some(h) = &rhost {
            pam_set_item(pamh, PAM_RHOST, h.as_ptr().cast());
        }
        let hook: extern "C" fn(c_int, libc::c_uint, *mut c_void) = no_delay;
        pam_set_item(pamh, PAM_FAIL_DELAY, hook as *const c_void);
        pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK)
    };
    if rc == PAM_SUCCESS {
        // SAFETY: as above.
        rc = unsafe { pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK) };
    }
    let verdict = if rc == PAM_SUCCESS {
        Ok(())
    } else {
        // SAFETY: pam_strerror returns a static NUL-terminated string (or NULL).
        let text = unsafe {
            let s = pam_strerror(pamh, rc);
            if s.is_null() {
                format!("PAM error {rc}")
            } else {
                CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        };
        Err(text)
    };
    // SAFETY: ends the transaction started above; `pamh` is not used afterwards.
    unsafe { pam_end(pamh, rc) };
    verdict
}
