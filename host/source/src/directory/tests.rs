use std::fs::File;
use std::time::{Duration, UNIX_EPOCH};

use arrow::array::{Array, AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use parquet::arrow::ArrowWriter;
use sluice_config::{ColumnType, DeclaredColumn};

use super::*;

/// A directory source of `format` over `dir`, listing at every call (the
/// job file asks for a positive interval; the tests need none).
fn spec(dir: &Path, format: DirectoryFormat) -> DirectorySource {
    DirectorySource {
        path: dir.to_owned(),
        format,
        schema: None,
        header: true,
        max_files_per_trigger: None,
        latest_first: false,
        max_file_age: Duration::from_secs(7 * 24 * 3600),
        poll_interval: Duration::ZERO,
    }
}

fn declared() -> Option<Vec<DeclaredColumn>> {
    Some(vec![
        DeclaredColumn {
            name: "id".into(),
            column_type: ColumnType::Int64,
            nullable: false,
        },
        DeclaredColumn {
            name: "name".into(),
            column_type: ColumnType::Utf8,
            nullable: true,
        },
    ])
}

/// Set a file's modification time to `secs` after the Unix epoch.
fn touch(path: &Path, secs: u64) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// Write rows `ids` (columns `id`, `name`) as `name` in `format`, modified
/// at `secs`.
fn write(dir: &Path, name: &str, format: DirectoryFormat, ids: &[i64], secs: u64) {
    let path = dir.join(name);
    match format {
        DirectoryFormat::Jsonl => {
            let text: String = ids
                .iter()
                .map(|id| format!("{{\"id\":{id},\"name\":\"n{id}\"}}\n"))
                .collect();
            std::fs::write(&path, text).unwrap();
        }
        DirectoryFormat::Csv => {
            let text: String = ids.iter().map(|id| format!("{id},n{id}\n")).collect();
            std::fs::write(&path, format!("id,name\n{text}")).unwrap();
        }
        DirectoryFormat::Parquet => {
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("name", DataType::Utf8, true),
            ]));
            let names: Vec<String> = ids.iter().map(|id| format!("n{id}")).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids.to_vec())),
                    Arc::new(StringArray::from(names)),
                ],
            )
            .unwrap();
            let mut writer =
                ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
            // Row groups of two rows, so a position can fall inside one.
            for offset in (0..batch.num_rows()).step_by(2) {
                let len = 2.min(batch.num_rows() - offset);
                writer.write(&batch.slice(offset, len)).unwrap();
                writer.flush().unwrap();
            }
            writer.close().unwrap();
        }
    }
    touch(&path, secs);
}

/// The ids of the chunks the source has now, `rows` at a time, checking
/// that each fits.
fn drain(source: &mut DirectoryReader, rows: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    while let Chunk::Rows(batch) = source.next_chunk(Room::rows(rows), Duration::ZERO).unwrap() {
        assert!(batch.num_rows() <= rows);
        ids.extend(batch.column(0).as_primitive::<Int64Type>().values());
    }
    ids
}

const FORMATS: [DirectoryFormat; 3] = [
    DirectoryFormat::Jsonl,
    DirectoryFormat::Csv,
    DirectoryFormat::Parquet,
];

#[test]
fn files_are_read_once_each_oldest_first_as_they_arrive() {
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b", format, &[3, 4], 200);
        write(dir.path(), "a", format, &[1, 2], 100);
        write(dir.path(), "c", format, &[5], 200);
        // Hidden, temporary and Spark's own files are not data.
        for skipped in [".hidden", "_SUCCESS", "part.tmp", "x._COPYING_"] {
            write(dir.path(), skipped, format, &[99], 50);
        }
        std::fs::create_dir(dir.path().join("subdir")).unwrap();
        let mut source = DirectoryReader::open(&spec(dir.path(), format), 10, false, 2).unwrap();
        assert_eq!(drain(&mut source, 10), [1, 2, 3, 4, 5], "{format:?}");
        assert_eq!(drain(&mut source, 10), [0i64; 0], "{format:?}: read again");
        write(dir.path(), "d", format, &[6, 7], 300);
        assert_eq!(drain(&mut source, 10), [6, 7], "{format:?}");
        assert_eq!(drain(&mut source, 10), [0i64; 0], "{format:?}: read again");
    }
}

#[test]
fn a_restart_at_any_position_reads_nothing_twice_and_skips_nothing() {
    for format in FORMATS {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "f1", format, &[1, 2, 3, 4, 5], 100);
        write(dir.path(), "f2", format, &[6, 7, 8], 200);
        write(dir.path(), "f3", format, &[9, 10, 11, 12], 300);
        let mut spec = spec(dir.path(), format);
        spec.max_files_per_trigger = Some(2);
        let all: Vec<i64> = (1..=12).collect();
        // Stop after every chunk of 3 rows (at least once inside each
        // file), and go on from the positions in a new source.
        for stop_after in 0..=5 {
            let mut source = DirectoryReader::open(&spec, 3, false, 2).unwrap();
            let mut ids = Vec::new();
            for _ in 0..stop_after {
                match source.next_chunk(Room::rows(3), Duration::ZERO).unwrap() {
                    Chunk::Rows(batch) => {
                        ids.extend(batch.column(0).as_primitive::<Int64Type>().values())
                    }
                    _ => break,
                }
            }
            let positions = source.positions();
            let mut restarted = DirectoryReader::open(&spec, 3, false, 2).unwrap();
            restarted.seek(&positions).unwrap();
            assert_eq!(restarted.positions(), positions, "{format:?}");
            ids.extend(drain(&mut restarted, 3));
            assert_eq!(ids, all, "{format:?}, restarted after {stop_after} chunks");
        }
    }
}

#[test]
fn a_source_goes_back_to_an_earlier_position() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f1", DirectoryFormat::Jsonl, &[1, 2, 3], 100);
    let mut source =
        DirectoryReader::open(&spec(dir.path(), DirectoryFormat::Jsonl), 2, false, 2).unwrap();
    let start = source.positions();
    assert!(start.is_empty());
    assert_eq!(drain(&mut source, 2), [1, 2, 3]);
    source.seek(&start).unwrap();
    assert_eq!(drain(&mut source, 2), [1, 2, 3]);
}

#[test]
fn latest_first_takes_the_newest_files_first_a_listing_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        write(
            dir.path(),
            name,
            DirectoryFormat::Jsonl,
            &[i as i64],
            100 + i as u64,
        );
    }
    let mut spec = spec(dir.path(), DirectoryFormat::Jsonl);
    spec.latest_first = true;
    spec.max_files_per_trigger = Some(1);
    let mut source = DirectoryReader::open(&spec, 10, false, 2).unwrap();
    let mut ids: Vec<i64> = Vec::new();
    while let Chunk::Rows(batch) = source.next_chunk(Room::rows(10), Duration::ZERO).unwrap() {
        ids.extend(batch.column(0).as_primitive::<Int64Type>().values());
        // A file newer than all the others arrives: it is the next one.
        if ids.len() == 1 {
            write(dir.path(), "d", DirectoryFormat::Jsonl, &[3], 400);
        }
    }
    assert_eq!(ids, [2, 3, 1, 0]);
}

#[test]
fn a_late_file_with_an_older_time_is_read_and_old_files_are_forgotten() {
    let day = 24 * 3600;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f1", DirectoryFormat::Jsonl, &[1], 10 * day);
    write(dir.path(), "f2", DirectoryFormat::Jsonl, &[2], 20 * day);
    let mut spec = spec(dir.path(), DirectoryFormat::Jsonl);
    spec.max_file_age = Duration::from_secs(5 * day);
    let mut source = DirectoryReader::open(&spec, 10, false, 2).unwrap();
    assert_eq!(drain(&mut source, 10), [1, 2]);
    // Copied in with its time kept: older than f2, within the age.
    write(dir.path(), "f0", DirectoryFormat::Jsonl, &[3], 18 * day);
    // Older than the age behind the newest: ignored, as by Spark.
    write(
        dir.path(),
        "ancient",
        DirectoryFormat::Jsonl,
        &[4],
        11 * day,
    );
    assert_eq!(drain(&mut source, 10), [3]);
    // What the positions keep: the files within the age, and the horizon;
    // f1 is forgotten.
    let mut kept: Vec<(String, i32)> = source
        .positions()
        .into_iter()
        .map(|p| (p.topic, p.partition))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            ("".into(), HORIZON),
            ("f0".into(), DONE),
            ("f2".into(), DONE)
        ]
    );
    // A restart from them reads nothing again and still ignores the old.
    let mut restarted = DirectoryReader::open(&spec, 10, false, 2).unwrap();
    restarted.seek(&source.positions()).unwrap();
    assert_eq!(drain(&mut restarted, 10), [0i64; 0]);
}

#[test]
fn available_now_reads_the_files_there_at_the_start_then_ends() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", DirectoryFormat::Jsonl, &[1], 100);
    write(dir.path(), "b", DirectoryFormat::Jsonl, &[2], 200);
    let mut spec = spec(dir.path(), DirectoryFormat::Jsonl);
    spec.max_files_per_trigger = Some(1);
    let mut source = DirectoryReader::open(&spec, 10, true, 2).unwrap();
    let Chunk::Rows(first) = source.next_chunk(Room::rows(10), Duration::ZERO).unwrap() else {
        panic!("no rows");
    };
    assert_eq!(first.column(0).as_primitive::<Int64Type>().value(0), 1);
    write(dir.path(), "c", DirectoryFormat::Jsonl, &[3], 300);
    assert_eq!(drain(&mut source, 10), [2]);
    assert!(matches!(
        source.next_chunk(Room::rows(10), Duration::ZERO).unwrap(),
        Chunk::End
    ));
}

#[test]
fn json_lines_schemas_are_inferred_from_the_oldest_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "{\"id\":1}\n").unwrap();
    touch(&dir.path().join("a"), 100);
    std::fs::write(dir.path().join("b"), "{\"id\":2,\"score\":0.5}\n").unwrap();
    touch(&dir.path().join("b"), 200);
    let source =
        DirectoryReader::open(&spec(dir.path(), DirectoryFormat::Jsonl), 10, false, 2).unwrap();
    let schema = source.schema();
    assert_eq!(
        schema.field_with_name("id").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("score").unwrap().data_type(),
        &DataType::Float64
    );

    let empty = tempfile::tempdir().unwrap();
    let error = DirectoryReader::open(&spec(empty.path(), DirectoryFormat::Jsonl), 10, false, 2)
        .unwrap_err()
        .to_string();
    assert!(error.contains("declare the columns in `schema`"), "{error}");
}

#[test]
fn a_declared_schema_casts_parquet_columns() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", DirectoryFormat::Parquet, &[1, 2], 100);
    let mut spec = spec(dir.path(), DirectoryFormat::Parquet);
    spec.schema = Some(vec![DeclaredColumn {
        name: "id".into(),
        column_type: ColumnType::Float64,
        nullable: true,
    }]);
    let mut source = DirectoryReader::open(&spec, 10, false, 2).unwrap();
    let Chunk::Rows(batch) = source.next_chunk(Room::rows(10), Duration::ZERO).unwrap() else {
        panic!("no rows");
    };
    assert_eq!(batch.num_columns(), 1);
    assert_eq!(
        batch
            .column(0)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .values(),
        &[1.0, 2.0]
    );
}

#[test]
fn a_parquet_file_that_does_not_fit_the_schema_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "good.parquet",
        DirectoryFormat::Parquet,
        &[1],
        100,
    );
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["x"]))]).unwrap();
    let path = dir.path().join("bad.parquet");
    let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    touch(&path, 200);
    let mut source =
        DirectoryReader::open(&spec(dir.path(), DirectoryFormat::Parquet), 10, false, 2).unwrap();
    assert!(matches!(
        source.next_chunk(Room::rows(10), Duration::ZERO).unwrap(),
        Chunk::Rows(_)
    ));
    let error = source
        .next_chunk(Room::rows(10), Duration::ZERO)
        .unwrap_err();
    assert!(matches!(error, SourceError::Unreadable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("bad.parquet") && message.contains("column `id` is Utf8"),
        "{message}"
    );
    assert!(message.contains("good.parquet"), "{message}");
}

#[test]
fn a_malformed_json_line_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"id\":1}\n\n{\"id\":2}\n{\"id\":\"three\"}\n",
    )
    .unwrap();
    let mut spec = spec(dir.path(), DirectoryFormat::Jsonl);
    spec.schema = declared();
    let mut source = DirectoryReader::open(&spec, 10, false, 2).unwrap();
    let message = source
        .next_chunk(Room::rows(10), Duration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("in.jsonl") && message.contains("line 4"),
        "{message}"
    );
    std::fs::write(dir.path().join("in.jsonl"), "{\"id\":1}{\"id\":2}\n").unwrap();
    let mut source = DirectoryReader::open(&spec, 10, false, 2).unwrap();
    let message = source
        .next_chunk(Room::rows(10), Duration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("line 1: more than one JSON value"),
        "{message}"
    );
    // Restarted past rows that decoded, a bad line keeps its number.
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"id\":1}\n\n{\"id\":2}\n{\"id\":3}\n{\"id\":\"four\"}\n",
    )
    .unwrap();
    let mut source = DirectoryReader::open(&spec, 1, false, 2).unwrap();
    let first = source.next_chunk(Room::rows(1), Duration::ZERO).unwrap();
    assert!(matches!(first, Chunk::Rows(_)));
    let positions = source.positions();
    let mut restarted = DirectoryReader::open(&spec, 1, false, 2).unwrap();
    restarted.seek(&positions).unwrap();
    let mut message = String::new();
    for _ in 0..3 {
        if let Err(e) = restarted.next_chunk(Room::rows(1), Duration::ZERO) {
            message = e.to_string();
            break;
        }
    }
    assert!(message.contains("line 5: "), "{message}");
}

#[test]
fn a_chunk_fits_its_room_in_rows_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<i64> = (0..100).collect();
    write(dir.path(), "a", DirectoryFormat::Parquet, &ids, 100);
    let mut source =
        DirectoryReader::open(&spec(dir.path(), DirectoryFormat::Parquet), 100, false, 2).unwrap();
    let room = Room {
        rows: 30,
        bytes: 64,
    };
    let Chunk::Rows(batch) = source.next_chunk(room, Duration::ZERO).unwrap() else {
        panic!("no rows");
    };
    assert!(
        batch.num_rows() < 30 && batch.num_rows() >= 1,
        "{}",
        batch.num_rows()
    );
    assert!(batch.column(1).len() == batch.num_rows());
}

#[test]
fn positions_of_another_source_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), DirectoryFormat::Jsonl);
    spec.schema = declared();
    let mut source = DirectoryReader::open(&spec, 10, false, 2).unwrap();
    let error = source
        .seek(&crate::row_position(5))
        .unwrap_err()
        .to_string();
    assert!(error.contains("another source's"), "{error}");
}
