//! The process runtime: containers as supervised host processes.
