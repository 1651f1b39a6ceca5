//! Checks every statement of [`super::cql`] against `schema.cql` without a server: a small parser
//! for the two statement shapes the journal uses (`INSERT INTO t (..) VALUES (..) [USING TIMESTAMP
//! :m]` and `SELECT .. FROM t WHERE .. [LIMIT :m]`), the rules a ScyllaDB node would enforce (and
//! a few of ours), and the driver's own serialization and type checks of our row structs against
//! column specifications built from the schema's types — the same checks the driver runs against
//! a prepared statement's metadata.

use ::scylla::deserialize::row::DeserializeRow;
use ::scylla::frame::response::result::{ColumnSpec, ColumnType, NativeType, TableSpec};
use ::scylla::serialize::SerializationError;
use ::scylla::serialize::row::{RowSerializationContext, SerializeRow};
use ::scylla::serialize::writers::RowWriter;

use super::cql;
use super::schema::{CqlType, Kind, Schema, Table, tokenize};

/// What a bind marker stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A value of this column.
    Column(String),
    /// `USING TIMESTAMP`: a bigint.
    Timestamp,
    /// `LIMIT`: an int.
    Limit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    name: String,
    target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Insert,
    Select,
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dml {
    verb: Verb,
    table: String,
    /// Inserted or selected columns.
    columns: Vec<String>,
    /// `WHERE` restrictions: column and operator.
    restrictions: Vec<(String, String)>,
    markers: Vec<Marker>,
}

struct Cursor {
    tokens: Vec<Kind>,
    at: usize,
}

impl Cursor {
    fn next(&mut self) -> Result<Kind, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or("statement ends too early")?;
        self.at += 1;
        Ok(token)
    }

    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.at)
    }

    fn word(&mut self, word: &str) -> Result<(), String> {
        match self.next()? {
            Kind::Word(found) if found == word => Ok(()),
            other => Err(format!("expected {word}, found {other:?}")),
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Some(Kind::Word(found)) if found == word);
        if found {
            self.at += 1;
        }
        found
    }

    fn symbol(&mut self, symbol: char) -> Result<(), String> {
        match self.next()? {
            Kind::Symbol(found) if found == symbol => Ok(()),
            other => Err(format!("expected {symbol:?}, found {other:?}")),
        }
    }

    fn eat_symbol(&mut self, symbol: char) -> bool {
        let found = self.peek() == Some(&Kind::Symbol(symbol));
        if found {
            self.at += 1;
        }
        found
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next()? {
            Kind::Word(name) | Kind::Quoted(name) => Ok(name),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    fn names(&mut self) -> Result<Vec<String>, String> {
        let mut names = vec![self.name()?];
        while self.eat_symbol(',') {
            names.push(self.name()?);
        }
        Ok(names)
    }

    /// An unqualified table name (the session is bound to the keyspace).
    fn table(&mut self) -> Result<String, String> {
        let table = self.name()?;
        if self.peek() == Some(&Kind::Symbol('.')) {
            return Err(format!("{table}.…: statements must not name a keyspace"));
        }
        Ok(table)
    }

    /// A named bind marker (`:name`); positional `?` markers are refused because the row structs
    /// bind by name.
    fn marker(&mut self, target: Target) -> Result<Marker, String> {
        match self.next()? {
            Kind::Symbol(':') => Ok(Marker {
                name: self.name()?,
                target,
            }),
            Kind::Symbol('?') => Err("use named bind markers (:name), not ?".to_owned()),
            other => Err(format!("expected a bind marker, found {other:?}")),
        }
    }

    fn end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(extra) => Err(format!("unsupported clause starting at {extra:?}")),
        }
    }
}

fn parse(text: &str) -> Result<Dml, String> {
    let tokens = tokenize(text).map_err(|error| error.to_string())?;
    let mut cursor = Cursor {
        tokens: tokens.into_iter().map(|token| token.kind).collect(),
        at: 0,
    };
    match cursor.next()? {
        Kind::Word(verb) if verb == "insert" => {
            cursor.word("into")?;
            let table = cursor.table()?;
            cursor.symbol('(')?;
            let columns = cursor.names()?;
            cursor.symbol(')')?;
            cursor.word("values")?;
            cursor.symbol('(')?;
            let mut markers = Vec::new();
            for column in &columns {
                if !markers.is_empty() {
                    cursor.symbol(',')?;
                }
                markers.push(cursor.marker(Target::Column(column.clone()))?);
            }
            cursor.symbol(')')?;
            if cursor.eat_word("using") {
                cursor.word("timestamp")?;
                markers.push(cursor.marker(Target::Timestamp)?);
            }
            cursor.end()?;
            Ok(Dml {
                verb: Verb::Insert,
                table,
                columns,
                restrictions: Vec::new(),
                markers,
            })
        }
        Kind::Word(verb) if verb == "select" => {
            let columns = cursor.names()?;
            cursor.word("from")?;
            let table = cursor.table()?;
            cursor.word("where")?;
            let mut restrictions = Vec::new();
            let mut markers = Vec::new();
            loop {
                let column = cursor.name()?;
                let operator = match cursor.next()? {
                    Kind::Symbol(symbol @ ('=' | '<' | '>')) => symbol.to_string(),
                    Kind::Operator(operator @ (">=" | "<=")) => operator.to_owned(),
                    other => return Err(format!("unsupported operator {other:?}")),
                };
                markers.push(cursor.marker(Target::Column(column.clone()))?);
                restrictions.push((column, operator));
                if !cursor.eat_word("and") {
                    break;
                }
            }
            if cursor.eat_word("limit") {
                markers.push(cursor.marker(Target::Limit)?);
            }
            cursor.end()?;
            Ok(Dml {
                verb: Verb::Select,
                table,
                columns,
                restrictions,
                markers,
            })
        }
        other => Err(format!(
            "only INSERT and SELECT are expected, found {other:?}"
        )),
    }
}

/// Parses `text` and checks it against `schema`; the parsed statement if it passes.
fn check(schema: &Schema, text: &str) -> Result<Dml, String> {
    let dml = parse(text)?;
    let table = schema
        .table(&dml.table)
        .ok_or_else(|| format!("no table {}", dml.table))?;
    for column in dml
        .columns
        .iter()
        .chain(dml.restrictions.iter().map(|(column, _)| column))
    {
        if table.column(column).is_none() {
            return Err(format!("no column {}.{column}", table.name));
        }
    }
    let mut names: Vec<&str> = dml
        .markers
        .iter()
        .map(|marker| marker.name.as_str())
        .collect();
    names.sort_unstable();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err("bind marker names must be unique".to_owned());
    }
    match dml.verb {
        Verb::Insert => check_insert(table, &dml)?,
        Verb::Select => check_select(table, &dml)?,
    }
    Ok(dml)
}

fn check_insert(table: &Table, dml: &Dml) -> Result<(), String> {
    let mut columns = dml.columns.clone();
    columns.sort_unstable();
    if columns.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err("a column is inserted twice".to_owned());
    }
    let missing: Vec<&String> = table
        .partition_key
        .iter()
        .chain(table.clustering.iter().map(|(column, _)| column))
        .filter(|key| !dml.columns.contains(key))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "INSERT must bind the whole primary key, missing {missing:?}"
        ));
    }
    Ok(())
}

fn check_select(table: &Table, dml: &Dml) -> Result<(), String> {
    for key in &table.partition_key {
        let restrictions: Vec<&String> = dml
            .restrictions
            .iter()
            .filter(|(column, _)| column == key)
            .map(|(_, operator)| operator)
            .collect();
        if restrictions != [&"=".to_owned()] {
            return Err(format!(
                "the WHERE clause must restrict partition key column {key} with = once"
            ));
        }
    }
    // Clustering restrictions: a prefix of the clustering columns, equalities first, a range
    // (one or two bounds) only on the last restricted column.
    let mut restricted_prefix = true;
    let mut ranged = false;
    for (column, _) in &table.clustering {
        let operators: Vec<&str> = dml
            .restrictions
            .iter()
            .filter(|(restricted, _)| restricted == column)
            .map(|(_, operator)| operator.as_str())
            .collect();
        if operators.is_empty() {
            restricted_prefix = false;
            continue;
        }
        if !restricted_prefix || ranged {
            return Err(format!(
                "clustering column {column} is restricted after an unrestricted or ranged one"
            ));
        }
        if operators == ["="] {
            continue;
        }
        let lower = operators
            .iter()
            .filter(|op| matches!(**op, ">" | ">="))
            .count();
        let upper = operators
            .iter()
            .filter(|op| matches!(**op, "<" | "<="))
            .count();
        if operators.contains(&"=") || lower > 1 || upper > 1 {
            return Err(format!(
                "clustering column {column} has conflicting restrictions"
            ));
        }
        ranged = true;
    }
    for (column, _) in &dml.restrictions {
        if !table.is_key(column) {
            return Err(format!(
                "{column} is not a key column: restricting it needs ALLOW FILTERING"
            ));
        }
    }
    Ok(())
}

fn native(cql_type: CqlType) -> ColumnType<'static> {
    ColumnType::Native(match cql_type {
        CqlType::Ascii => NativeType::Ascii,
        CqlType::BigInt => NativeType::BigInt,
        CqlType::Blob => NativeType::Blob,
        CqlType::Boolean => NativeType::Boolean,
        CqlType::Double => NativeType::Double,
        CqlType::Float => NativeType::Float,
        CqlType::Int => NativeType::Int,
        CqlType::SmallInt => NativeType::SmallInt,
        CqlType::Text => NativeType::Text,
        CqlType::Timestamp => NativeType::Timestamp,
        CqlType::TimeUuid => NativeType::Timeuuid,
        CqlType::TinyInt => NativeType::TinyInt,
        CqlType::Uuid => NativeType::Uuid,
    })
}

fn spec(
    schema: &Schema,
    table: &Table,
    name: &str,
    typ: ColumnType<'static>,
) -> ColumnSpec<'static> {
    ColumnSpec::owned(
        name.to_owned(),
        typ,
        TableSpec::owned(schema.keyspace.name.clone(), table.name.clone()),
    )
}

/// What a prepared statement's metadata would say of its bind markers.
fn bind_specs(schema: &Schema, dml: &Dml) -> Vec<ColumnSpec<'static>> {
    let Some(table) = schema.table(&dml.table) else {
        return Vec::new();
    };
    dml.markers
        .iter()
        .map(|marker| {
            let typ = match &marker.target {
                Target::Column(column) => table
                    .column(column)
                    .map_or(ColumnType::Native(NativeType::Blob), |column| {
                        native(column.cql_type)
                    }),
                Target::Timestamp => ColumnType::Native(NativeType::BigInt),
                Target::Limit => ColumnType::Native(NativeType::Int),
            };
            spec(schema, table, &marker.name, typ)
        })
        .collect()
}

/// What a result's metadata would say of its columns.
fn result_specs(schema: &Schema, dml: &Dml) -> Vec<ColumnSpec<'static>> {
    let Some(table) = schema.table(&dml.table) else {
        return Vec::new();
    };
    dml.columns
        .iter()
        .filter_map(|name| table.column(name))
        .map(|column| spec(schema, table, &column.name, native(column.cql_type)))
        .collect()
}

/// Serializes `row` as the driver would for a statement with `specs`; the number of values.
fn serialize(
    row: &impl SerializeRow,
    specs: &[ColumnSpec<'_>],
) -> Result<usize, SerializationError> {
    let context = RowSerializationContext::from_specs(specs);
    let mut buffer = Vec::new();
    let mut writer = RowWriter::new(&mut buffer);
    row.serialize(&context, &mut writer)?;
    Ok(writer.value_count())
}

/// Binds the statement named `name` with its row struct (`None`: no struct for that name).
fn bind(name: &str, specs: &[ColumnSpec<'_>]) -> Option<Result<usize, SerializationError>> {
    let stream = "conv:acme:01hzz";
    let payload = [1_u8, 2, 3];
    Some(match name {
        "insert_event" => serialize(
            &cql::EventRow {
                stream,
                bucket: 0,
                seq: 1,
                writer_epoch: 2,
                payload: &payload,
            },
            specs,
        ),
        "select_events" | "select_event_keys" => serialize(
            &cql::EventRange {
                stream,
                bucket: 0,
                first_seq: 1,
                last_seq: 9,
            },
            specs,
        ),
        "upsert_head" => serialize(
            &cql::HeadRow {
                shard: 3,
                stream,
                last_seq: 9,
                write_time: 9,
            },
            specs,
        ),
        "select_head" => serialize(&cql::HeadKey { shard: 3, stream }, specs),
        "select_heads" => serialize(
            &cql::HeadsPage {
                shard: 3,
                after_stream: "",
                page_size: 100,
            },
            specs,
        ),
        "upsert_progress" => serialize(
            &cql::ProgressRow {
                cursor: "published",
                shard: 3,
                stream,
                done_seq: 4,
                write_time: 4,
            },
            specs,
        ),
        "select_progress" => serialize(
            &cql::ProgressPage {
                cursor: "published",
                shard: 3,
                after_stream: "",
                page_size: 100,
            },
            specs,
        ),
        "upsert_snapshot" => serialize(
            &cql::SnapshotRow {
                stream,
                seq: 5,
                schema_version: 1,
                state: &payload,
            },
            specs,
        ),
        "select_snapshot" => serialize(&cql::SnapshotKey { stream }, specs),
        _ => return None,
    })
}

/// Type-checks the result row struct of the statement named `name` (`None`: it has no result).
fn read_back(name: &str, specs: &[ColumnSpec<'_>]) -> Option<Result<(), String>> {
    let checked = match name {
        "select_events" => <cql::StoredRow as DeserializeRow<'_, '_>>::type_check(specs),
        "select_event_keys" => <cql::StoredKey as DeserializeRow<'_, '_>>::type_check(specs),
        "select_head" => <cql::Head as DeserializeRow<'_, '_>>::type_check(specs),
        "select_heads" => <cql::StreamHead as DeserializeRow<'_, '_>>::type_check(specs),
        "select_progress" => <cql::StreamProgress as DeserializeRow<'_, '_>>::type_check(specs),
        "select_snapshot" => <cql::StoredSnapshot as DeserializeRow<'_, '_>>::type_check(specs),
        _ => return None,
    };
    Some(checked.map_err(|error| error.to_string()))
}

fn schema() -> Schema {
    Schema::bundled().expect("schema.cql parses")
}

#[test]
fn every_statement_matches_the_schema() {
    let schema = schema();
    for (name, text) in cql::ALL {
        if let Err(problem) = check(&schema, text) {
            panic!("{name}: {problem}\n{text}");
        }
    }
}

#[test]
fn every_statement_binds_its_row_struct_with_the_schema_types() {
    let schema = schema();
    for (name, text) in cql::ALL {
        let dml = check(&schema, text).expect("statement checks");
        let specs = bind_specs(&schema, &dml);
        let written = bind(name, &specs)
            .unwrap_or_else(|| panic!("{name}: no row struct is checked for it"))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            written,
            dml.markers.len(),
            "{name}: one value per bind marker"
        );
    }
}

#[test]
fn every_select_reads_into_its_row_struct() {
    let schema = schema();
    for (name, text) in cql::ALL {
        let dml = check(&schema, text).expect("statement checks");
        let checked = read_back(name, &result_specs(&schema, &dml));
        match dml.verb {
            Verb::Select => {
                let result = checked.unwrap_or_else(|| panic!("{name}: no result struct checked"));
                assert_eq!(result, Ok(()), "{name}");
            }
            Verb::Insert => assert!(checked.is_none(), "{name} returns no rows"),
        }
    }
}

#[test]
fn batched_statements_bind_a_whole_partition_key() {
    let schema = schema();
    for text in cql::BATCHED {
        let dml = check(&schema, text).expect("statement checks");
        assert_eq!(dml.verb, Verb::Insert, "{text}");
        let table = schema.table(&dml.table).expect("table");
        for key in &table.partition_key {
            assert!(
                dml.markers
                    .iter()
                    .any(|marker| marker.target == Target::Column(key.clone())),
                "{text}: partition key {key} must be bound"
            );
        }
    }
}

#[test]
fn reads_and_writes_of_progress_and_heads_share_their_partitioning() {
    // `lagging` merges both tables partition by partition: same shard column, same type.
    let schema = schema();
    let heads = schema.table("stream_heads").expect("stream_heads");
    let progress = schema.table("cursor_progress").expect("cursor_progress");
    assert_eq!(heads.partition_key, vec!["shard"]);
    assert_eq!(progress.partition_key, vec!["cursor", "shard"]);
    assert_eq!(
        heads.column("shard").map(|column| column.cql_type),
        progress.column("shard").map(|column| column.cql_type)
    );
    assert_eq!(heads.clustering[0].0, "stream");
    assert_eq!(progress.clustering[0].0, "stream");
}

#[test]
fn schema_names_are_not_reserved_words() {
    // ScyllaDB's and Cassandra's reserved keywords: a column named like one fails to parse.
    const RESERVED: &[&str] = &[
        "add",
        "allow",
        "alter",
        "and",
        "any",
        "apply",
        "asc",
        "authorize",
        "batch",
        "begin",
        "by",
        "columnfamily",
        "create",
        "default",
        "delete",
        "desc",
        "describe",
        "drop",
        "each_quorum",
        "entries",
        "execute",
        "for",
        "from",
        "full",
        "grant",
        "if",
        "in",
        "index",
        "inet",
        "infinity",
        "insert",
        "into",
        "is",
        "keyspace",
        "keyspaces",
        "limit",
        "local_one",
        "local_quorum",
        "materialized",
        "mbean",
        "mbeans",
        "modify",
        "nan",
        "norecursive",
        "not",
        "null",
        "of",
        "on",
        "one",
        "or",
        "order",
        "password",
        "primary",
        "quorum",
        "rename",
        "replace",
        "revoke",
        "schema",
        "select",
        "set",
        "table",
        "three",
        "to",
        "token",
        "truncate",
        "two",
        "unlogged",
        "unset",
        "update",
        "use",
        "using",
        "view",
        "where",
        "with",
    ];
    let schema = schema();
    let mut names = vec![schema.keyspace.name.clone()];
    for table in &schema.tables {
        names.push(table.name.clone());
        names.extend(table.columns.iter().map(|column| column.name.clone()));
    }
    for name in names {
        assert!(
            !RESERVED.contains(&name.as_str()),
            "{name} is a reserved word"
        );
    }
}

#[test]
fn the_checker_refuses_what_a_node_would_refuse() {
    let schema = schema();
    for (text, why) in [
        (
            "SELECT seq FROM events WHERE stream = :stream",
            "partition key only partly restricted",
        ),
        (
            "SELECT seq FROM events WHERE stream = :s AND bucket > :b",
            "partition key by range",
        ),
        (
            "SELECT seq FROM events WHERE stream = :s AND bucket = :b AND writer_epoch = :e",
            "clustering column skipped",
        ),
        (
            "SELECT seq FROM events WHERE stream = :s AND bucket = :b AND seq > :q AND writer_epoch = :e",
            "restriction after a range",
        ),
        (
            "SELECT seq FROM events WHERE stream = :s AND bucket = :b AND payload = :p",
            "non-key column",
        ),
        (
            "SELECT nope FROM events WHERE stream = :s AND bucket = :b",
            "unknown column",
        ),
        (
            "SELECT seq FROM nope WHERE stream = :s AND bucket = :b",
            "unknown table",
        ),
        (
            "SELECT seq FROM crest.events WHERE stream = :s AND bucket = :b",
            "keyspace named",
        ),
        (
            "SELECT seq FROM events WHERE stream = ? AND bucket = ?",
            "positional markers",
        ),
        (
            "SELECT seq FROM events WHERE stream = :s AND bucket = :s",
            "duplicate marker names",
        ),
        (
            "SELECT seq FROM events WHERE stream = :s AND bucket = :b ALLOW FILTERING",
            "allow filtering",
        ),
        (
            "INSERT INTO events (stream, bucket, seq, payload) VALUES (:a, :b, :c, :d)",
            "primary key column missing",
        ),
        (
            "INSERT INTO events (stream, bucket, seq, writer_epoch) VALUES (:a, :b, :c)",
            "fewer markers than columns",
        ),
        (
            "INSERT INTO events (stream, bucket, seq, writer_epoch) VALUES (:a, :b, :c, :d) IF NOT EXISTS",
            "lightweight transaction",
        ),
        (
            "UPDATE stream_heads SET last_seq = :l WHERE shard = :s AND stream = :t",
            "another verb",
        ),
    ] {
        assert!(check(&schema, text).is_err(), "{why}: {text}");
    }
}

#[test]
fn the_serialization_check_catches_type_and_name_drift() {
    let schema = schema();
    let dml = check(&schema, cql::INSERT_EVENT).expect("checks");
    let good = bind_specs(&schema, &dml);
    assert_eq!(
        bind("insert_event", &good).map(|result| result.is_ok()),
        Some(true)
    );
    // The bucket column declared as int instead of bigint.
    let mut retyped = good.clone();
    retyped[1] = ColumnSpec::owned(
        "bucket".to_owned(),
        ColumnType::Native(NativeType::Int),
        TableSpec::owned("crest".to_owned(), "events".to_owned()),
    );
    assert_eq!(
        bind("insert_event", &retyped).map(|result| result.is_err()),
        Some(true)
    );
    // A marker the struct has no field for.
    let mut renamed = good;
    renamed[4] = ColumnSpec::owned(
        "body".to_owned(),
        ColumnType::Native(NativeType::Blob),
        TableSpec::owned("crest".to_owned(), "events".to_owned()),
    );
    assert_eq!(
        bind("insert_event", &renamed).map(|result| result.is_err()),
        Some(true)
    );
    // A result column of another type.
    let text = [ColumnSpec::owned(
        "payload".to_owned(),
        ColumnType::Native(NativeType::Text),
        TableSpec::owned("crest".to_owned(), "events".to_owned()),
    )];
    let mut mistyped = result_specs(
        &schema,
        &check(&schema, cql::SELECT_EVENTS).expect("checks"),
    );
    mistyped[2] = text[0].clone();
    assert!(matches!(
        read_back("select_events", &mistyped),
        Some(Err(_))
    ));
}
