//! Calendar time for listings, MDTM and MFMT, in UTC or local time.
