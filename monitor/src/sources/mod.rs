//! Where login information and host facts come from: auth.log lines (`authlog`), the binary
//! utmp/wtmp/btmp/lastlog records (`utmp`), following files across rotation (`follow`), and
//! which of them this host has (`logins`).
pub mod authlog;
pub mod follow;
pub mod host;
pub mod logins;
pub mod utmp;
