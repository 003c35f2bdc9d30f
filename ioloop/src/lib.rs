//! A readiness-based event loop over mio.
