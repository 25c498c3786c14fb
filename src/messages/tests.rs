//! Cross-module tests of the message codecs.
