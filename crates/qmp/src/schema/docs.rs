//! Markdown reference pages generated from the declarations.
