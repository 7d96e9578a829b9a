//! The same plugins written in every guest language, run by the host on the
//! same input: their output must be identical to the Rust plugin's.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Int64Builder, MapBuilder, StringBuilder};
use arrow_array::types::{Int8Type, Int32Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    Decimal256Array, DictionaryArray, DurationNanosecondArray, FixedSizeBinaryArray, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, IntervalDayTimeArray, IntervalMonthDayNanoArray,
    IntervalYearMonthArray, LargeBinaryArray, LargeStringArray, ListArray, RecordBatch,
    StringArray, StringViewArray, StructArray, Time32MillisecondArray, Time64MicrosecondArray,
    UInt8Array, UInt16Array, UInt64Array,
};
use arrow_buffer::{IntervalDayTime, IntervalMonthDayNano, i256};
use arrow_schema::{DataType, Field};
use sluice_plugin_artifacts as artifacts;
use sluice_runtime::{
    AggregatePlugin, PluginErrorKind, PluginLimits, Runtime, RuntimeConfig, RuntimeError,
    TransformPlugin,
};

/// (language, component) of every `pii-redact`.
const PII_REDACT: &[(&str, &str)] = &[
    ("rust", artifacts::PII_REDACT),
    ("python", artifacts::PYTHON_PII_REDACT),
    ("js", artifacts::JS_PII_REDACT),
    ("c", artifacts::C_PII_REDACT),
    ("go", artifacts::GO_PII_REDACT),
];

/// (language, component) of every `filter`.
const FILTER: &[(&str, &str)] = &[
    ("rust", artifacts::FILTER),
    ("python", artifacts::PYTHON_FILTER),
    ("js", artifacts::JS_FILTER),
    ("c", artifacts::C_FILTER),
    ("go", artifacts::GO_FILTER),
];

/// One engine for the whole file: each large component compiles once.
static RUNTIME: LazyLock<Runtime> =
    LazyLock::new(|| Runtime::new(RuntimeConfig::default()).unwrap());

fn load(language: &str, path: &str, config: &[(&str, &str)]) -> TransformPlugin {
    let config = config
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    TransformPlugin::load(
        &RUNTIME,
        language,
        path.as_ref(),
        config,
        PluginLimits::default(),
    )
    .unwrap_or_else(|e| panic!("loading the {language} plugin: {e}"))
}

/// Texts that exercise every branch of the redaction rules.
const TRICKY: &[&str] = &[
    "contact jane.doe@example.com now",
    "a@b.co, x_y@mail.example.org.",
    "user@localhost",
    "@example.com and price @ 5.00",
    "card 4111 1111 1111 1111 ok",
    "4242-4242-4242-4242",
    "order 4111111111111112",
    "tel 555 1234",
    "x4111111111111111 and 4111111111111111a",
    "4111111111111111111111 too long",
    "00000000000000",
    "5555 5555 5555 4444- then 5555  5555 5555 4444",
    "ünïcödé zoë@exämple.com and müller@example.de",
    "foo@bar.com@baz.org a.@b.c. @@a@b.co",
    "",
    "4012-8888-8888-1881@example.com",
];

/// Deterministic pseudo-random words, e-mails, card numbers and noise.
fn generated_texts(rows: usize) -> Vec<String> {
    let pieces = [
        "order",
        "refund",
        "4111 1111 1111 1111",
        "jane@mail.example.org",
        "call",
        "x@y",
        "378282246310005",
        "6011-1111-1111-1117",
        "a.b-c@d-e.f.gh",
        "12345",
        "ü@ö.de",
        "-",
        "@",
        ".",
        "9",
        "Ω",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..rows)
        .map(|_| {
            let mut text = String::new();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
                if !state.is_multiple_of(3) {
                    text.push(' ');
                }
            }
            text
        })
        .collect()
}

/// Strings, a binary payload, nulls and numbers: the shared input.
fn redact_input() -> RecordBatch {
    let mut notes: Vec<Option<String>> = TRICKY.iter().map(|s| Some((*s).to_owned())).collect();
    notes.push(None);
    notes.extend(generated_texts(400).into_iter().map(Some));
    let rows = notes.len();
    let emails: Vec<Option<String>> = (0..rows)
        .map(|i| (i % 5 != 3).then(|| format!("user{i}.name@example{}.com", i % 7)))
        .collect();
    let payloads: Vec<Option<Vec<u8>>> = notes
        .iter()
        .map(|note| {
            note.as_ref().map(|n| {
                let mut bytes = b"{\"note\":\"".to_vec();
                bytes.extend_from_slice(n.as_bytes());
                bytes.extend_from_slice(b"\",\"blob\":\"\xff\xfe@\x00\"}");
                bytes
            })
        })
        .collect();
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..rows as i64)) as ArrayRef,
        ),
        ("email", Arc::new(StringArray::from(emails))),
        ("note", Arc::new(StringArray::from(notes))),
        (
            "payload",
            Arc::new(BinaryArray::from_iter(
                payloads.iter().map(|p| p.as_deref()),
            )),
        ),
    ])
    .unwrap()
}

#[test]
fn pii_redact_output_is_identical_in_every_language() {
    let input = redact_input();
    for columns in [Some("email,note,payload"), Some(" note , "), None] {
        let config: Vec<(&str, &str)> = columns.map(|c| ("columns", c)).into_iter().collect();
        let reference = load("rust", artifacts::PII_REDACT, &config)
            .process(&input)
            .unwrap()
            .batch;
        let changed = (0..input.num_columns())
            .filter(|&i| reference.column(i) != input.column(i))
            .count();
        assert!(changed > 0, "{columns:?}: the Rust plugin redacted nothing");
        for (language, path) in &PII_REDACT[1..] {
            let plugin = load(language, path, &config);
            let out = plugin.process(&input).unwrap().batch;
            assert_eq!(out, reference, "{language} pii-redact, columns {columns:?}");
        }
    }
}

/// Go's collector may only run between calls in wasmtime 48 to 50 (#14318): a
/// Go plugin fed batch after batch, each allocating megabytes, must neither
/// trap nor drift from the Rust output.
#[test]
fn a_go_plugin_survives_sustained_calls() {
    let notes = StringArray::from(generated_texts(8_000));
    let input = RecordBatch::try_from_iter([("note", Arc::new(notes) as ArrayRef)]).unwrap();
    let config = [("columns", "note")];
    let reference = load("rust", artifacts::PII_REDACT, &config)
        .process(&input)
        .unwrap()
        .batch;
    let plugin = load("go", artifacts::GO_PII_REDACT, &config);
    for call in 0..300 {
        let out = plugin
            .process(&input)
            .unwrap_or_else(|e| panic!("call {call}: {e}"))
            .batch;
        assert_eq!(out, reference, "call {call}");
    }
}

#[test]
fn pii_redact_counts_the_same_redactions_in_every_language() {
    let input = redact_input();
    let counts: Vec<u64> = PII_REDACT
        .iter()
        .map(|(language, path)| {
            let name = format!("count-{language}");
            let plugin = TransformPlugin::load(
                &RUNTIME,
                &name,
                path.as_ref(),
                vec![("columns".into(), "note,payload".into())],
                PluginLimits::default(),
            )
            .unwrap();
            plugin.process(&input).unwrap();
            RUNTIME.metrics().get(&name, "redactions")
        })
        .collect();
    assert!(counts[0] > 0);
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
}

/// Numbers with nulls, floats with the edge cases of total order, strings,
/// booleans.
fn filter_input() -> RecordBatch {
    let rows = 64;
    let amount: Int64Array = (0..rows)
        .map(|i: i64| (i % 9 != 4).then_some((i * 37) % 41 - 20))
        .collect();
    let specials = [
        -0.0,
        0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.5,
        -1.25,
        1e300,
    ];
    let score: Float64Array = (0..rows as usize)
        .map(|i| {
            (i % 11 != 7).then(|| specials[i % specials.len()] * if i % 3 == 0 { 1.0 } else { 0.5 })
        })
        .collect();
    let countries = ["DE", "FR", "Zürich", "US", "de", "", "DE ", "Ω"];
    let country: StringArray = (0..rows as usize)
        .map(|i| (i % 13 != 5).then_some(countries[i % countries.len()]))
        .collect();
    let small: Int32Array = (0..rows as i32).map(|i| Some(i - 30)).collect();
    let big: UInt64Array = (0..rows as u64).map(|i| Some(u64::MAX - i * 3)).collect();
    let flag: BooleanArray = (0..rows)
        .map(|i| (i % 10 != 0).then_some(i % 3 == 0))
        .collect();
    let (tags, quantities, address) = nested_columns(rows as usize);
    RecordBatch::try_from_iter(vec![
        ("amount", Arc::new(amount) as ArrayRef),
        ("score", Arc::new(score)),
        ("country", Arc::new(country)),
        ("small", Arc::new(small)),
        ("big", Arc::new(big)),
        ("flag", Arc::new(flag)),
        ("tags", tags),
        ("quantities", quantities),
        ("address", address),
    ])
    .unwrap()
}

/// A list, a map and a struct (holding a list) column of `rows` rows, with
/// nulls at every level: what a filter must carry through when it drops rows.
fn nested_columns(rows: usize) -> (ArrayRef, ArrayRef, ArrayRef) {
    let tag = |i: usize, j: usize| (j != 1 || !i.is_multiple_of(4)).then(|| format!("t{i}.{j}"));
    let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(
        (0..rows).map(|i| (i % 6 != 2).then(|| (0..i % 4).map(move |j| Some((i * 10 + j) as i32)))),
    );
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    for i in 0..rows {
        for j in 0..i % 3 {
            map.keys().append_value(format!("sku-{j}"));
            map.values()
                .append_option((j != 2).then_some((i * j) as i64));
        }
        map.append(i % 7 != 3).unwrap();
    }
    let lines: ListArray = {
        let mut builder = arrow_array::builder::ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            for j in 0..i % 3 {
                builder.values().append_option(tag(i, j));
            }
            builder.append(i % 5 != 1);
        }
        builder.finish()
    };
    let city: StringArray = (0..rows)
        .map(|i| (i % 9 != 0).then(|| format!("city-{}", i % 7)))
        .collect();
    let address = StructArray::try_new(
        vec![
            Field::new("city", DataType::Utf8, true),
            Field::new("lines", lines.data_type().clone(), true),
        ]
        .into(),
        vec![Arc::new(city) as ArrayRef, Arc::new(lines)],
        Some((0..rows).map(|i| i % 8 != 6).collect()),
    )
    .unwrap();
    (Arc::new(tags), Arc::new(map.finish()), Arc::new(address))
}

/// (column, op, value) configurations, each answered by the Rust plugin.
const FILTERS: &[(&str, &str, Option<&str>)] = &[
    ("amount", "gt", Some("10")),
    ("amount", "le", Some("-3")),
    ("amount", "eq", Some("+0")),
    ("amount", "ne", Some("5")),
    ("amount", "is_null", None),
    ("amount", "is_not_null", None),
    ("tags", "is_null", None),
    ("quantities", "is_not_null", None),
    ("address", "is_null", None),
    ("score", "lt", Some("0")),
    ("score", "ge", Some("-0.0")),
    ("score", "eq", Some("NaN")),
    ("score", "gt", Some("1e10")),
    ("score", "le", Some("-inf")),
    ("country", "eq", Some("DE")),
    ("country", "lt", Some("Zürich")),
    ("country", "ge", Some("de")),
    ("small", "ge", Some("7")),
    ("big", "gt", Some("18446744073709551600")),
    ("flag", "eq", Some("true")),
    ("flag", "lt", Some("true")),
];

/// A batch with a column of every type the decoders produce that the
/// contract has no variant for, nested ones included, with nulls, and an
/// `key` to filter on.
fn decoded_types() -> RecordBatch {
    let dictionary: DictionaryArray<Int32Type> = vec![Some("PAID"), None, Some("SHIPPED")]
        .into_iter()
        .collect();
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    map.keys().append_value("a");
    map.values().append_value(1);
    map.append(true).unwrap();
    map.append(false).unwrap();
    map.keys().append_value("b");
    map.values().append_null();
    map.keys().append_value("c");
    map.values().append_value(3);
    map.append(true).unwrap();
    let decimals = Decimal128Array::from(vec![Some(12_345), None, Some(-5)])
        .with_precision_and_scale(10, 2)
        .unwrap();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("key", Arc::new(Int64Array::from(vec![1, 2, 3]))),
        ("status", Arc::new(dictionary)),
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-128), None, Some(127)])),
        ),
        ("i16", Arc::new(Int16Array::from(vec![1, -2, 3]))),
        ("u8", Arc::new(UInt8Array::from(vec![0, 255, 7]))),
        ("u16", Arc::new(UInt16Array::from(vec![0, 65_535, 7]))),
        (
            "day",
            Arc::new(Date32Array::from(vec![Some(19_000), None, Some(-1)])),
        ),
        (
            "day64",
            Arc::new(Date64Array::from(vec![0, 86_400_000, -86_400_000])),
        ),
        (
            "clock",
            Arc::new(Time32MillisecondArray::from(vec![0, 1_000, 86_399_999])),
        ),
        (
            "clock64",
            Arc::new(Time64MicrosecondArray::from(vec![0, 1, 2])),
        ),
        (
            "took",
            Arc::new(DurationNanosecondArray::from(vec![1, -1, i64::MAX])),
        ),
        ("price", Arc::new(decimals.clone())),
        (
            "big",
            Arc::new(
                Decimal256Array::from(vec![
                    Some(i256::from_i128(i128::MAX)),
                    None,
                    Some(i256::from_i128(-1)),
                ])
                .with_precision_and_scale(76, 10)
                .unwrap(),
            ),
        ),
        (
            "large_text",
            Arc::new(LargeStringArray::from(vec!["x", "", "z"])),
        ),
        (
            "view",
            Arc::new(StringViewArray::from(vec![
                "a longer string than twelve",
                "b",
                "c",
            ])),
        ),
        (
            "large_bytes",
            Arc::new(LargeBinaryArray::from(vec![&b"\x00"[..], b"", b"\xff"])),
        ),
        (
            "uuid",
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some([1u8, 2, 3, 4]), None, Some([0, 0, 0, 0])].into_iter(),
                    4,
                )
                .unwrap(),
            ),
        ),
        ("attributes", Arc::new(map.finish())),
        (
            "months",
            Arc::new(IntervalYearMonthArray::from(vec![Some(14), None, Some(-1)])),
        ),
        (
            "span",
            Arc::new(IntervalDayTimeArray::from(vec![
                Some(IntervalDayTime::new(1, 500)),
                Some(IntervalDayTime::new(-2, 0)),
                None,
            ])),
        ),
        (
            "period",
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                None,
                Some(IntervalMonthDayNano::new(1, 2, 3_000_000_000)),
                Some(IntervalMonthDayNano::new(0, 0, -1)),
            ])),
        ),
        (
            "small_ints",
            Arc::new(ListArray::from_iter_primitive::<Int8Type, _, _>(vec![
                Some(vec![Some(1), None]),
                None,
                Some(vec![]),
            ])),
        ),
        (
            "line",
            Arc::new(StructArray::from(vec![
                (
                    Arc::new(Field::new("price", decimals.data_type().clone(), true)),
                    Arc::new(decimals) as ArrayRef,
                ),
                (
                    Arc::new(Field::new("day", DataType::Date32, true)),
                    Arc::new(Date32Array::from(vec![Some(1), Some(2), None])) as ArrayRef,
                ),
            ])),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn every_decoded_type_passes_through_every_language_unchanged() {
    let input = decoded_types();
    for (language, path) in FILTER {
        let plugin = load(language, path, &[("column", "key"), ("op", "is_not_null")]);
        let output = plugin
            .process(&input)
            .unwrap_or_else(|e| panic!("{language}: {e}"));
        assert_eq!(output.batch, input, "{language}");
    }
}

#[test]
fn filter_output_is_identical_in_every_language() {
    let input = filter_input();
    for &(column, op, value) in FILTERS {
        let mut config = vec![("column", column), ("op", op)];
        config.extend(value.map(|v| ("value", v)));
        let reference = load("rust", artifacts::FILTER, &config)
            .process(&input)
            .unwrap()
            .batch;
        for (language, path) in &FILTER[1..] {
            let out = load(language, path, &config).process(&input).unwrap().batch;
            assert_eq!(out, reference, "{language} filter {column} {op} {value:?}");
        }
    }
}

/// `on_mismatch = "reject"` hands the mismatching rows back as invalid
/// input: the same rows and message in every language that has it (the C
/// SDK cannot name rows yet).
#[test]
fn rejected_rows_are_the_same_in_every_language() {
    let input = filter_input();
    let config = [
        ("column", "amount"),
        ("op", "gt"),
        ("value", "10"),
        ("on_mismatch", "reject"),
    ];
    let rejected = |language: &str, path: &str| match load(language, path, &config).process(&input)
    {
        Err(RuntimeError::Plugin {
            kind: PluginErrorKind::InvalidInput,
            message,
            rows,
            ..
        }) => (message, rows),
        other => panic!("{language}: expected invalid input, got {other:?}"),
    };
    let reference = rejected("rust", artifacts::FILTER);
    assert!(!reference.1.is_empty() && reference.1.len() < input.num_rows());
    for (language, path) in FILTER.iter().filter(|(language, _)| *language != "c") {
        assert_eq!(rejected(language, path), reference, "{language}");
    }
}

fn fatal_message(error: RuntimeError) -> String {
    match error {
        RuntimeError::Plugin {
            kind: PluginErrorKind::Fatal,
            message,
            ..
        } => message,
        other => panic!("expected a fatal plugin error, got {other}"),
    }
}

#[test]
fn bad_configs_are_the_same_fatal_errors_in_every_language() {
    let input = filter_input();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("column", "nope"), ("op", "gt"), ("value", "1")],
            "no column `nope`",
        ),
        (
            &[("column", "amount"), ("op", "gt"), ("value", "ten")],
            "\"ten\" is not a Int64",
        ),
        (
            &[("column", "small"), ("op", "gt"), ("value", "1.5")],
            "\"1.5\" is not a Int32",
        ),
        (
            &[("column", "amount"), ("op", "between"), ("value", "1")],
            "unknown op `between`",
        ),
        (
            &[("column", "amount"), ("op", "gt")],
            "missing config key `value`",
        ),
        (&[("op", "gt")], "missing config key `column`"),
    ];
    for (config, expected) in cases {
        for (language, path) in FILTER {
            let error = load(language, path, config).process(&input).unwrap_err();
            let message = fatal_message(error);
            assert!(
                message.contains(expected),
                "{language} {config:?}: {message}"
            );
        }
    }
    for (language, path) in PII_REDACT {
        for (columns, expected) in [("email,nope", "no column `nope`"), ("id", "column `id` is")] {
            let plugin = load(language, path, &[("columns", columns)]);
            let message = fatal_message(plugin.process(&redact_input()).unwrap_err());
            assert!(
                message.contains(expected),
                "{language} {columns}: {message}"
            );
        }
    }
}

fn load_aggregate(path: &str, config: &[(&str, &str)]) -> AggregatePlugin {
    let config = config
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    AggregatePlugin::load(
        &RUNTIME,
        "stats",
        path.as_ref(),
        config,
        PluginLimits::default(),
    )
    .unwrap()
}

#[test]
fn the_python_stats_aggregate_matches_the_rust_one() {
    let input = filter_input();
    let groups: Vec<u32> = (0..input.num_rows() as u32).map(|i| i % 5).collect();
    for config in [&[("column", "amount")][..], &[("column", "small")], &[]] {
        let results: Vec<RecordBatch> = [artifacts::STATS, artifacts::PYTHON_STATS]
            .iter()
            .map(|path| {
                let stats = load_aggregate(path, config);
                let empty = vec![Vec::new(); 5];
                let states = stats.update(&empty, &input, &groups).unwrap();
                // Fold the batch in again from the host-held states, and
                // merge groups pairwise, as session windows do.
                let states = stats.update(&states, &input, &groups).unwrap();
                let merged = stats.merge(&states[..2], &states[3..]).unwrap();
                let mut all = states.clone();
                all.extend(merged);
                all.push(Vec::new());
                let finished = stats.finish(&all).unwrap();
                assert!(finished.groups.is_empty());
                finished.batch
            })
            .collect();
        assert_eq!(results[0].num_rows(), 8);
        assert_eq!(results[1], results[0], "stats {config:?}");
        assert!(results[0].column(0).null_count() == 0);
    }
}

#[test]
fn a_plugin_that_declares_what_it_reads_keeps_columns_it_never_saw() {
    // `note` is of Arrow's null type, which no contract version carries:
    // it can only reach the output without crossing into the plugin.
    let input = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 5, 2, 7])) as ArrayRef,
        ),
        ("note", Arc::new(arrow_array::NullArray::new(4))),
        (
            "name",
            Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
        ),
    ])
    .unwrap();
    let keep = BooleanArray::from(vec![false, true, false, true]);
    let expected = arrow_select::filter::filter_record_batch(&input, &keep).unwrap();
    for (language, path) in [
        ("python", artifacts::PYTHON_FILTER),
        ("js", artifacts::JS_FILTER),
    ] {
        let filter = load(
            language,
            path,
            &[("column", "id"), ("op", "ge"), ("value", "3")],
        );
        let output = filter.process(&input).unwrap().batch;
        assert_eq!(output, expected, "{language}");
    }
}
