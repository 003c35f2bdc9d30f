//! Authorizers: who may log in, where their home is and what they may do.
