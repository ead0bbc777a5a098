//! Plan files (being written).
