//! The journal's schema (`infra/deploy/scylla/schema.cql`), parsed by a small hand-written parser
//! for the subset of CQL it uses: `CREATE KEYSPACE` with options, and `CREATE TABLE` with columns of
//! native types, `STATIC`, an inline or table-level `PRIMARY KEY` (composite partition keys
//! included) and `WITH CLUSTERING ORDER BY (...) AND option = value`. Anything else is an error, so
//! the file stays within what the statement checks understand.
//!
//! The parsed schema serves two purposes: the unit tests check every statement of [`super::cql`]
//! against it, and [`Schema::statements_for`] renders the file for another keyspace name and
//! replication factor (the contract tests create a throwaway keyspace from it; a single test node
//! needs a replication factor of 1).

use std::ops::Range;

/// The schema file, as shipped.
pub const SCHEMA_CQL: &str = include_str!("../../../deploy/scylla/schema.cql");

/// The schema text is not the CQL subset this parser reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema: {0}")]
pub struct SchemaError(String);

fn error<T>(message: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError(message.into()))
}

/// A column type (the native types the parser accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CqlType {
    /// `ascii`
    Ascii,
    /// `bigint`
    BigInt,
    /// `blob`
    Blob,
    /// `boolean`
    Boolean,
    /// `double`
    Double,
    /// `float`
    Float,
    /// `int`
    Int,
    /// `smallint`
    SmallInt,
    /// `text` (or `varchar`)
    Text,
    /// `timestamp`
    Timestamp,
    /// `timeuuid`
    TimeUuid,
    /// `tinyint`
    TinyInt,
    /// `uuid`
    Uuid,
}

impl CqlType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ascii" => Self::Ascii,
            "bigint" => Self::BigInt,
            "blob" => Self::Blob,
            "boolean" => Self::Boolean,
            "double" => Self::Double,
            "float" => Self::Float,
            "int" => Self::Int,
            "smallint" => Self::SmallInt,
            "text" | "varchar" => Self::Text,
            "timestamp" => Self::Timestamp,
            "timeuuid" => Self::TimeUuid,
            "tinyint" => Self::TinyInt,
            "uuid" => Self::Uuid,
            _ => return None,
        })
    }
}

/// Clustering order of a clustering column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending (the default).
    Asc,
    /// Descending.
    Desc,
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub cql_type: CqlType,
    /// Declared `STATIC`.
    pub is_static: bool,
}

/// A table of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Its name.
    pub name: String,
    /// Its columns, in declaration order.
    pub columns: Vec<Column>,
    /// The partition key columns.
    pub partition_key: Vec<String>,
    /// The clustering columns and their order.
    pub clustering: Vec<(String, Order)>,
}

impl Table {
    /// The column named `name`.
    #[must_use]
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// Whether `name` is part of the primary key.
    #[must_use]
    pub fn is_key(&self, name: &str) -> bool {
        self.partition_key.iter().any(|key| key == name)
            || self.clustering.iter().any(|(key, _)| key == name)
    }
}

/// The keyspace statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    /// Its name.
    pub name: String,
    /// The replication map (`class` and the factors), values unquoted.
    pub replication: Vec<(String, String)>,
}

/// One statement of the file with the places [`Schema::statements_for`] rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    text: String,
    /// Spans (in `text`) of the keyspace name.
    keyspace: Vec<Range<usize>>,
    /// Spans of replication factors, and whether each was a quoted string.
    factors: Vec<(Range<usize>, bool)>,
}

/// The parsed schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The keyspace.
    pub keyspace: Keyspace,
    /// The tables, in file order.
    pub tables: Vec<Table>,
    sources: Vec<Source>,
}

impl Schema {
    /// Parses schema text.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let tokens = tokenize(text)?;
        let mut keyspace = None;
        let mut tables: Vec<Table> = Vec::new();
        let mut sources = Vec::new();
        for statement in tokens.split(|token| token.kind == Kind::Symbol(';')) {
            let (Some(first), Some(last)) = (statement.first(), statement.last()) else {
                continue;
            };
            let start = first.span.start;
            let mut parser = Parser {
                tokens: statement,
                at: 0,
                keyspace_spans: Vec::new(),
                factor_spans: Vec::new(),
            };
            match parser.statement()? {
                Parsed::Keyspace(parsed) => {
                    if keyspace.is_some() {
                        return error("more than one CREATE KEYSPACE");
                    }
                    keyspace = Some(parsed);
                }
                Parsed::Table(qualifier, table) => {
                    let expected = keyspace
                        .as_ref()
                        .map(|keyspace: &Keyspace| keyspace.name.as_str());
                    if qualifier.as_deref() != expected || expected.is_none() {
                        return error(format!(
                            "table {} must be qualified with the keyspace created before it",
                            table.name
                        ));
                    }
                    if tables.iter().any(|other| other.name == table.name) {
                        return error(format!("table {} is created twice", table.name));
                    }
                    tables.push(table);
                }
            }
            let relative = |span: &Range<usize>| span.start - start..span.end - start;
            sources.push(Source {
                text: text[start..last.span.end].to_owned(),
                keyspace: parser.keyspace_spans.iter().map(relative).collect(),
                factors: parser
                    .factor_spans
                    .iter()
                    .map(|(span, quoted)| (relative(span), *quoted))
                    .collect(),
            });
        }
        let Some(keyspace) = keyspace else {
            return error("no CREATE KEYSPACE");
        };
        Ok(Self {
            keyspace,
            tables,
            sources,
        })
    }

    /// The schema shipped in `infra/deploy/scylla/schema.cql`.
    pub fn bundled() -> Result<Self, SchemaError> {
        Self::parse(SCHEMA_CQL)
    }

    /// The table named `name`.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|table| table.name == name)
    }

    /// The replication factor the file asks for (of `replication_factor`, or of its first
    /// datacenter).
    #[must_use]
    pub fn replication_factor(&self) -> Option<u32> {
        self.keyspace
            .replication
            .iter()
            .find(|(key, _)| key != "class")
            .and_then(|(_, value)| value.parse().ok())
    }

    /// The file's statements (without the final `;`), for keyspace `keyspace` with every
    /// replication factor set to `replication_factor`.
    #[must_use]
    pub fn statements_for(&self, keyspace: &str, replication_factor: u32) -> Vec<String> {
        self.sources
            .iter()
            .map(|source| {
                let mut edits: Vec<(Range<usize>, String)> = source
                    .keyspace
                    .iter()
                    .map(|span| (span.clone(), keyspace.to_owned()))
                    .collect();
                edits.extend(source.factors.iter().map(|(span, quoted)| {
                    let factor = if *quoted {
                        format!("'{replication_factor}'")
                    } else {
                        replication_factor.to_string()
                    };
                    (span.clone(), factor)
                }));
                edits.sort_by_key(|(span, _)| span.start);
                let mut text = String::with_capacity(source.text.len());
                let mut copied = 0;
                for (span, replacement) in edits {
                    text.push_str(&source.text[copied..span.start]);
                    text.push_str(&replacement);
                    copied = span.end;
                }
                text.push_str(&source.text[copied..]);
                text
            })
            .collect()
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An unquoted identifier or keyword, lowercased (CQL folds them).
    Word(String),
    /// A double-quoted identifier, case kept.
    Quoted(String),
    /// A single-quoted string literal.
    Text(String),
    /// A number literal.
    Number(String),
    /// One punctuation character.
    Symbol(char),
    /// `>=`, `<=` or `!=`.
    Operator(&'static str),
}

/// A token and where it is in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) span: Range<usize>,
}

/// Splits CQL text into tokens, dropping whitespace and comments (`--`, `//`, `/* */`).
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, SchemaError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        let next = bytes.get(at + 1).copied();
        if byte.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        if (byte == b'-' && next == Some(b'-')) || (byte == b'/' && next == Some(b'/')) {
            while at < bytes.len() && bytes[at] != b'\n' {
                at += 1;
            }
            continue;
        }
        if byte == b'/' && next == Some(b'*') {
            let Some(end) = text[at + 2..].find("*/") else {
                return error("unterminated comment");
            };
            at += 2 + end + 2;
            continue;
        }
        let kind = if byte.is_ascii_alphabetic() || byte == b'_' {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            Kind::Word(text[start..at].to_ascii_lowercase())
        } else if byte.is_ascii_digit() {
            while at < bytes.len() && (bytes[at].is_ascii_digit() || bytes[at] == b'.') {
                at += 1;
            }
            Kind::Number(text[start..at].to_owned())
        } else if byte == b'\'' || byte == b'"' {
            let (value, end) = quoted(text, at, byte)?;
            at = end;
            if byte == b'\'' {
                Kind::Text(value)
            } else {
                Kind::Quoted(value)
            }
        } else if matches!(byte, b'>' | b'<' | b'!') && next == Some(b'=') {
            at += 2;
            Kind::Operator(match byte {
                b'>' => ">=",
                b'<' => "<=",
                _ => "!=",
            })
        } else if b"(),;=.:{}<>?*[]".contains(&byte) {
            at += 1;
            Kind::Symbol(char::from(byte))
        } else {
            let character = text[at..].chars().next().unwrap_or('?');
            return error(format!("unexpected character {character:?} at byte {at}"));
        };
        tokens.push(Token {
            kind,
            span: start..at,
        });
    }
    Ok(tokens)
}

/// A quoted literal starting at `start` (the quote is doubled to escape it); its value and the
/// offset after it.
fn quoted(text: &str, start: usize, quote: u8) -> Result<(String, usize), SchemaError> {
    let bytes = text.as_bytes();
    let mut value = Vec::new();
    let mut at = start + 1;
    loop {
        match bytes.get(at) {
            None => return error("unterminated quoted text"),
            Some(&byte) if byte == quote => {
                if bytes.get(at + 1) == Some(&quote) {
                    value.push(quote);
                    at += 2;
                } else {
                    let value =
                        String::from_utf8(value).or_else(|_| error("quoted text is not UTF-8"))?;
                    return Ok((value, at + 1));
                }
            }
            Some(&byte) => {
                value.push(byte);
                at += 1;
            }
        }
    }
}

enum Parsed {
    Keyspace(Keyspace),
    /// The table and the keyspace it was qualified with.
    Table(Option<String>, Table),
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
    keyspace_spans: Vec<Range<usize>>,
    factor_spans: Vec<(Range<usize>, bool)>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Kind> {
        self.tokens.get(self.at).map(|token| &token.kind)
    }

    fn next(&mut self) -> Result<&Token, SchemaError> {
        let Some(token) = self.tokens.get(self.at) else {
            return error("statement ends too early");
        };
        self.at += 1;
        Ok(token)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Kind::Word(found)) if found == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.is_word(word);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_word(&mut self, word: &str) -> Result<(), SchemaError> {
        if self.eat_word(word) {
            return Ok(());
        }
        error(format!("expected {word}, found {:?}", self.peek()))
    }

    fn eat_symbol(&mut self, symbol: char) -> bool {
        let found = self.peek() == Some(&Kind::Symbol(symbol));
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_symbol(&mut self, symbol: char) -> Result<(), SchemaError> {
        if self.eat_symbol(symbol) {
            return Ok(());
        }
        error(format!("expected {symbol:?}, found {:?}", self.peek()))
    }

    /// An identifier and its span.
    fn identifier(&mut self) -> Result<(String, Range<usize>), SchemaError> {
        let token = self.next()?;
        match &token.kind {
            Kind::Word(name) | Kind::Quoted(name) => Ok((name.clone(), token.span.clone())),
            other => error(format!("expected a name, found {other:?}")),
        }
    }

    fn statement(&mut self) -> Result<Parsed, SchemaError> {
        self.expect_word("create")?;
        let parsed = if self.eat_word("keyspace") {
            Parsed::Keyspace(self.keyspace()?)
        } else if self.eat_word("table") {
            let (qualifier, table) = self.table()?;
            Parsed::Table(qualifier, table)
        } else {
            return error(format!(
                "only CREATE KEYSPACE and CREATE TABLE are supported, found {:?}",
                self.peek()
            ));
        };
        if let Some(extra) = self.peek() {
            return error(format!("unexpected {extra:?} at the end of a statement"));
        }
        Ok(parsed)
    }

    fn if_not_exists(&mut self) -> Result<(), SchemaError> {
        if self.eat_word("if") {
            self.expect_word("not")?;
            self.expect_word("exists")?;
        }
        Ok(())
    }

    fn keyspace(&mut self) -> Result<Keyspace, SchemaError> {
        self.if_not_exists()?;
        let (name, span) = self.identifier()?;
        self.keyspace_spans.push(span);
        self.expect_word("with")?;
        let mut replication = None;
        loop {
            let (option, _) = self.identifier()?;
            self.expect_symbol('=')?;
            if option == "replication" {
                replication = Some(self.replication()?);
            } else {
                self.value()?;
            }
            if !self.eat_word("and") {
                break;
            }
        }
        let Some(replication) = replication else {
            return error(format!("keyspace {name} has no replication"));
        };
        Ok(Keyspace { name, replication })
    }

    /// `{'class': '...', 'dc_or_replication_factor': n, ...}`
    fn replication(&mut self) -> Result<Vec<(String, String)>, SchemaError> {
        self.expect_symbol('{')?;
        let mut entries = Vec::new();
        loop {
            let key = match &self.next()?.kind {
                Kind::Text(key) => key.clone(),
                other => return error(format!("expected a replication key, found {other:?}")),
            };
            self.expect_symbol(':')?;
            let token = self.next()?.clone();
            let (value, quoted) = match token.kind {
                Kind::Text(value) => (value, true),
                Kind::Number(value) => (value, false),
                other => return error(format!("expected a replication value, found {other:?}")),
            };
            if key != "class" {
                if value.parse::<u32>().is_err() {
                    return error(format!("replication factor {value:?} is not a number"));
                }
                self.factor_spans.push((token.span, quoted));
            }
            entries.push((key, value));
            if !self.eat_symbol(',') {
                break;
            }
        }
        self.expect_symbol('}')?;
        Ok(entries)
    }

    /// An option value: a literal, a word (`true`), or a map of literals.
    fn value(&mut self) -> Result<(), SchemaError> {
        if self.eat_symbol('{') {
            loop {
                self.literal()?;
                self.expect_symbol(':')?;
                self.literal()?;
                if !self.eat_symbol(',') {
                    break;
                }
            }
            return self.expect_symbol('}');
        }
        self.literal()
    }

    fn literal(&mut self) -> Result<(), SchemaError> {
        match &self.next()?.kind {
            Kind::Text(_) | Kind::Number(_) | Kind::Word(_) => Ok(()),
            other => error(format!("expected a literal, found {other:?}")),
        }
    }

    fn table(&mut self) -> Result<(Option<String>, Table), SchemaError> {
        self.if_not_exists()?;
        let (first, first_span) = self.identifier()?;
        let (qualifier, name) = if self.eat_symbol('.') {
            self.keyspace_spans.push(first_span);
            (Some(first), self.identifier()?.0)
        } else {
            (None, first)
        };
        self.expect_symbol('(')?;
        let mut columns: Vec<Column> = Vec::new();
        let mut partition_key = Vec::new();
        let mut clustering_names = Vec::new();
        let mut primary_keys = 0;
        loop {
            if self.eat_word("primary") {
                self.expect_word("key")?;
                primary_keys += 1;
                (partition_key, clustering_names) = self.primary_key()?;
            } else {
                let (column, _) = self.identifier()?;
                let type_name = match &self.next()?.kind {
                    Kind::Word(type_name) => type_name.clone(),
                    other => return error(format!("expected a type, found {other:?}")),
                };
                let Some(cql_type) = CqlType::parse(&type_name) else {
                    return error(format!("unsupported type {type_name} of {name}.{column}"));
                };
                let is_static = self.eat_word("static");
                if self.eat_word("primary") {
                    self.expect_word("key")?;
                    primary_keys += 1;
                    partition_key = vec![column.clone()];
                    clustering_names = Vec::new();
                }
                if columns.iter().any(|other| other.name == column) {
                    return error(format!("column {name}.{column} is declared twice"));
                }
                columns.push(Column {
                    name: column,
                    cql_type,
                    is_static,
                });
            }
            if !self.eat_symbol(',') {
                break;
            }
        }
        self.expect_symbol(')')?;
        if primary_keys != 1 {
            return error(format!("table {name} needs exactly one PRIMARY KEY"));
        }
        let mut clustering: Vec<(String, Order)> = clustering_names
            .into_iter()
            .map(|column| (column, Order::Asc))
            .collect();
        if self.eat_word("with") {
            loop {
                if self.eat_word("clustering") {
                    self.expect_word("order")?;
                    self.expect_word("by")?;
                    self.clustering_order(&name, &mut clustering)?;
                } else {
                    self.identifier()?;
                    self.expect_symbol('=')?;
                    self.value()?;
                }
                if !self.eat_word("and") {
                    break;
                }
            }
        }
        let table = Table {
            name,
            columns,
            partition_key,
            clustering,
        };
        for key in table
            .partition_key
            .iter()
            .chain(table.clustering.iter().map(|(key, _)| key))
        {
            let Some(column) = table.column(key) else {
                return error(format!("key column {}.{key} is not declared", table.name));
            };
            if column.is_static {
                return error(format!("key column {}.{key} cannot be static", table.name));
            }
        }
        if table.columns.iter().any(|column| column.is_static) && table.clustering.is_empty() {
            return error(format!(
                "table {} has static columns but no clustering key",
                table.name
            ));
        }
        Ok((qualifier, table))
    }

    /// `((a, b), c, d)` or `(a, c, d)`: the partition key and the clustering columns.
    fn primary_key(&mut self) -> Result<(Vec<String>, Vec<String>), SchemaError> {
        self.expect_symbol('(')?;
        let partition = if self.eat_symbol('(') {
            let names = self.names()?;
            self.expect_symbol(')')?;
            names
        } else {
            vec![self.identifier()?.0]
        };
        let clustering = if self.eat_symbol(',') {
            self.names()?
        } else {
            Vec::new()
        };
        self.expect_symbol(')')?;
        Ok((partition, clustering))
    }

    fn names(&mut self) -> Result<Vec<String>, SchemaError> {
        let mut names = vec![self.identifier()?.0];
        while self.eat_symbol(',') {
            names.push(self.identifier()?.0);
        }
        Ok(names)
    }

    /// `(c ASC, d DESC)`: must name the clustering columns in order.
    fn clustering_order(
        &mut self,
        table: &str,
        clustering: &mut [(String, Order)],
    ) -> Result<(), SchemaError> {
        self.expect_symbol('(')?;
        let mut index = 0;
        loop {
            let (column, _) = self.identifier()?;
            let order = if self.eat_word("desc") {
                Order::Desc
            } else {
                self.eat_word("asc");
                Order::Asc
            };
            match clustering.get_mut(index) {
                Some((name, slot)) if *name == column => *slot = order,
                _ => {
                    return error(format!(
                        "CLUSTERING ORDER of {table} must list the clustering columns in order"
                    ));
                }
            }
            index += 1;
            if !self.eat_symbol(',') {
                break;
            }
        }
        self.expect_symbol(')')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_schema_parses() {
        let schema = Schema::bundled().expect("schema.cql parses");
        assert_eq!(schema.keyspace.name, "crest");
        assert!(
            schema
                .keyspace
                .replication
                .contains(&("class".to_owned(), "NetworkTopologyStrategy".to_owned()))
        );
        assert_eq!(schema.replication_factor(), Some(3));
        let events = schema.table("events").expect("events table");
        assert_eq!(events.partition_key, vec!["stream", "bucket"]);
        assert_eq!(
            events.clustering,
            vec![
                ("seq".to_owned(), Order::Asc),
                ("writer_epoch".to_owned(), Order::Desc)
            ]
        );
        assert_eq!(
            events.column("payload").map(|column| column.cql_type),
            Some(CqlType::Blob)
        );
        for table in ["snapshots", "stream_heads", "cursor_progress"] {
            assert!(schema.table(table).is_some(), "{table}");
        }
        assert_eq!(
            schema
                .table("cursor_progress")
                .map(|table| &table.partition_key),
            Some(&vec!["cursor".to_owned(), "shard".to_owned()])
        );
    }

    #[test]
    fn statements_are_rendered_for_another_keyspace_and_replication_factor() {
        let schema = Schema::bundled().expect("parses");
        let statements = schema.statements_for("crest_test_1", 1);
        assert_eq!(statements.len(), 1 + schema.tables.len());
        assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS crest_test_1"));
        assert!(statements[0].contains("'replication_factor': 1}"));
        assert!(statements[1].contains("crest_test_1.events"));
        assert!(
            statements
                .iter()
                .all(|statement| !statement.contains("crest."))
        );
        let again = Schema::parse(&statements.join(";\n")).expect("the rendering parses");
        assert_eq!(again.keyspace.name, "crest_test_1");
        assert_eq!(again.replication_factor(), Some(1));
        assert_eq!(again.tables, schema.tables);
    }

    #[test]
    fn per_datacenter_factors_are_all_rewritten() {
        let text = "CREATE KEYSPACE k WITH replication = {'class': 'NetworkTopologyStrategy', \
                    'dc1': 3, 'dc2': '3'} AND durable_writes = true;\n\
                    CREATE TABLE k.t (a text PRIMARY KEY, b blob)";
        let schema = Schema::parse(text).expect("parses");
        let statements = schema.statements_for("other", 2);
        assert_eq!(
            statements[0],
            "CREATE KEYSPACE other WITH replication = {'class': 'NetworkTopologyStrategy', \
             'dc1': 2, 'dc2': '2'} AND durable_writes = true"
        );
        assert_eq!(
            statements[1],
            "CREATE TABLE other.t (a text PRIMARY KEY, b blob)"
        );
    }

    #[test]
    fn keys_comments_and_quoting_are_understood() {
        let text = "/* block */ CREATE KEYSPACE k WITH replication = {'class': 'X', 'replication_factor': 1};\n\
                    -- a comment; with a semicolon\n\
                    CREATE TABLE IF NOT EXISTS k.\"Quoted\" (\n\
                      a text, b bigint, c int, s blob STATIC, // trailing\n\
                      PRIMARY KEY ((a, b), c)\n\
                    ) WITH CLUSTERING ORDER BY (c DESC) AND comment = 'it''s';";
        let schema = Schema::parse(text).expect("parses");
        let table = schema.table("Quoted").expect("quoted name kept");
        assert_eq!(table.partition_key, vec!["a", "b"]);
        assert_eq!(table.clustering, vec![("c".to_owned(), Order::Desc)]);
        assert!(table.column("s").is_some_and(|column| column.is_static));
        assert!(table.is_key("b") && table.is_key("c") && !table.is_key("s"));
    }

    #[test]
    fn what_the_parser_does_not_understand_is_refused() {
        let keyspace =
            "CREATE KEYSPACE k WITH replication = {'class': 'X', 'replication_factor': 1};";
        for (table, why) in [
            ("CREATE TABLE k.t (a text, b blob)", "no primary key"),
            (
                "CREATE TABLE k.t (a text PRIMARY KEY, b map<text, text>)",
                "collections",
            ),
            (
                "CREATE TABLE k.t (a text PRIMARY KEY, a blob)",
                "duplicate column",
            ),
            (
                "CREATE TABLE k.t (a text, PRIMARY KEY (a, b))",
                "undeclared key",
            ),
            (
                "CREATE TABLE other.t (a text PRIMARY KEY)",
                "another keyspace",
            ),
            ("CREATE TABLE t (a text PRIMARY KEY)", "unqualified"),
            (
                "CREATE TABLE k.t (a text, b int, PRIMARY KEY (a, b)) WITH CLUSTERING ORDER BY (a DESC)",
                "order of a non-clustering column",
            ),
            ("CREATE INDEX ON k.t (b)", "other statements"),
            (
                "CREATE TABLE k.t (a text PRIMARY KEY) extra",
                "trailing tokens",
            ),
        ] {
            let text = format!("{keyspace}\n{table};");
            assert!(Schema::parse(&text).is_err(), "{why}: {table}");
        }
        assert!(Schema::parse("CREATE TABLE k.t (a text PRIMARY KEY);").is_err());
        assert!(
            Schema::parse(
                "CREATE KEYSPACE k WITH replication = {'class': 'X', 'replication_factor': 'x'};"
            )
            .is_err()
        );
        assert!(tokenize("'unterminated").is_err());
        assert!(tokenize("a /* open").is_err());
    }
}
