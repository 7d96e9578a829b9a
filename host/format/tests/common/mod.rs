//! A registry stand-in per test, and decoders against it.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use arrow::array::BinaryArray;
use sluice_format::{DecodeSpec, SchemaVersion, ValueDecoder, ValueFormat, open_decoder};
use sluice_registry_stand_in::StandIn;

/// A running Schema Registry stand-in.
pub struct Registry(StandIn);

impl Registry {
    pub fn start() -> Self {
        Registry(StandIn::start().expect("the registry stand-in starts"))
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    /// The job's registry options.
    pub fn options(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("url".to_owned(), self.url())])
    }

    /// A decoder reading `subject` at `version`.
    pub fn decoder(
        &self,
        format: ValueFormat,
        subject: &str,
        version: SchemaVersion,
    ) -> Box<dyn ValueDecoder> {
        open_decoder(&DecodeSpec {
            format,
            registry: self.options(),
            subject: Some(subject.to_owned()),
            version,
            schema: None,
            max_value_bytes: 1 << 20,
        })
        .expect("the decoder opens")
    }
}

/// Kafka values as the decoders take them.
pub fn binary(values: &[Vec<u8>]) -> BinaryArray {
    BinaryArray::from_iter_values(values)
}
