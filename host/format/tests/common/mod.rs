//! A registry stand-in per test, and decoders against it.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use arrow::array::BinaryArray;
use sluice_format::{
    DecodeSpec, PoisonKind, SchemaVersion, ValueDecoder, ValueFormat, open_decoder,
};
use sluice_registry_stand_in::StandIn;

/// A running Schema Registry stand-in.
pub struct Registry(StandIn);

impl Registry {
    pub fn start() -> Self {
        Registry(StandIn::start().expect("the registry stand-in starts"))
    }

    /// A stand-in at `address` (an earlier one's, to bring it back empty).
    pub fn start_at(address: std::net::SocketAddr) -> Self {
        Registry(StandIn::start_at(address).expect("the registry stand-in starts"))
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.0.address()
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
        self.decoder_with(format, subject, version, &[])
    }

    /// A JSON Schema decoder reading the latest `subject` that validates
    /// each value against its writer schema.
    pub fn validating_decoder(&self, subject: &str) -> Box<dyn ValueDecoder> {
        self.open(
            ValueFormat::JsonSchema,
            subject,
            SchemaVersion::Latest,
            &[],
            true,
        )
    }

    /// A decoder reading `subject` at `version`, with more registry options.
    pub fn decoder_with(
        &self,
        format: ValueFormat,
        subject: &str,
        version: SchemaVersion,
        options: &[(&str, &str)],
    ) -> Box<dyn ValueDecoder> {
        self.open(format, subject, version, options, false)
    }

    fn open(
        &self,
        format: ValueFormat,
        subject: &str,
        version: SchemaVersion,
        options: &[(&str, &str)],
        validate: bool,
    ) -> Box<dyn ValueDecoder> {
        let mut registry = self.options();
        registry.extend(
            options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        open_decoder(&DecodeSpec {
            format,
            registry,
            subject: Some(subject.to_owned()),
            version,
            schema: None,
            max_value_bytes: 1 << 20,
            validate,
        })
        .expect("the decoder opens")
    }
}

/// Kafka values as the decoders take them.
pub fn binary(values: &[Vec<u8>]) -> BinaryArray {
    BinaryArray::from_iter_values(values)
}

/// `value` framed with schema id `id` instead of its own.
pub fn with_schema_id(value: &[u8], id: u32) -> Vec<u8> {
    let mut framed = vec![0];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(&value[5..]);
    framed
}

/// A fresh `format` decoder of subject `flood-value`, allowed 5 lookups a
/// second, meets 50 values with made-up schema ids and then `reader_value`
/// (written with the subject's latest schema, its reader schema): the
/// made-up ids spend the lookups, and the reader's record still decodes,
/// because the decoder knows its reader schema's id from the start.
pub fn assert_reader_schema_needs_no_lookup(
    registry: &Registry,
    format: ValueFormat,
    reader_value: &[u8],
) {
    let mut decoder = registry.decoder_with(
        format,
        "flood-value",
        SchemaVersion::Latest,
        &[("lookups.per.second", "5")],
    );
    let mut mixed: Vec<Vec<u8>> = (0..50)
        .map(|i| with_schema_id(reader_value, 5000 + i))
        .collect();
    mixed.push(reader_value.to_vec());
    let decoded = decoder.decode(&binary(&mixed)).unwrap();
    assert_eq!(
        decoded.batch.num_rows(),
        1,
        "the reader's record decodes: {:?}",
        decoded.poison.last()
    );
    assert_eq!(decoded.poison.len(), 50);
    assert!(
        decoded
            .poison
            .iter()
            .all(|p| p.kind == PoisonKind::UnknownSchemaId)
    );
}
