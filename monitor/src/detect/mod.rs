//! Judging what happens: intrusion patterns raised live (`alerts`), and what makes a program
//! suspicious (`suspicious`, shared with `monitor audit`).
pub mod alerts;
pub mod suspicious;
