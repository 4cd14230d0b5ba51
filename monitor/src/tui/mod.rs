//! `monitor top`'s terminal view: the model (`model.rs`) kept from the pipeline's records or a
//! replayed capture (`replay.rs`), with an inbound flood as one row per listener
//! (`floods.rs`), the rows of each pane (`rows.rs`), drawing (`view.rs`), what keys do
//! (`ui.rs`), the terminal itself (`terminal.rs`), and the escaping of every string that came
//! from outside (`safe.rs`).
pub mod floods;
pub mod model;
pub mod replay;
pub mod rows;
pub mod safe;
pub mod terminal;
pub mod ui;
pub mod view;

#[cfg(test)]
mod tests;
