//! Filesystems: the only place virtual FTP paths are mapped to real paths and checked.
