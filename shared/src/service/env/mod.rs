//! Environments (Pulumi ESC): definitions in YAML, evaluated into properties that carry
//! `secret` and `unknown` flags and where each value was defined.
//!
//! The language is implemented from ESC's documentation: [`syntax`] reads the YAML with
//! positions, [`expr`] turns it into expressions (interpolations, references, `fn::` calls),
//! [`eval`] evaluates a definition and its imports.

pub mod diag;
pub mod eval;
pub mod expr;
pub mod syntax;
pub mod value;

mod builtins;
pub mod secret_text;
#[cfg(test)]
mod tests;
pub mod wire;
