//! What the API serves: each table's name, its columns and types as the warehouse reports them, and the
//! unique key its pages are ordered by. Marts are served by default, without personal columns; raw
//! tables (keyed by their Kafka coordinates) and personal columns only with `--expose-raw`.

use playlog_model::raw_columns::PERSONAL as PERSONAL_COLUMNS;

/// How a column's values are checked on the way in and rendered on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Float,
    Bool,
    Date,
    Timestamp,
    Text,
    /// Anything else (BLOB, 128-bit hash keys): rendered as text.
    Other,
}

impl Kind {
    fn of(sql_type: &str) -> Kind {
        let t = sql_type.to_ascii_uppercase();
        match t.as_str() {
            "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "UTINYINT" | "USMALLINT"
            | "UINTEGER" | "UBIGINT" | "HUGEINT" | "UHUGEINT" => Kind::Integer,
            "FLOAT" | "DOUBLE" => Kind::Float,
            "BOOLEAN" => Kind::Bool,
            "DATE" => Kind::Date,
            "VARCHAR" => Kind::Text,
            _ if t.starts_with("DECIMAL") => Kind::Float,
            _ if t.starts_with("TIMESTAMP") => Kind::Timestamp,
            _ => Kind::Other,
        }
    }

    pub fn example(self) -> &'static str {
        match self {
            Kind::Integer => "an integer, e.g. 42",
            Kind::Float => "a number, e.g. 3.5",
            Kind::Bool => "true or false",
            Kind::Date => "YYYY-MM-DD",
            Kind::Timestamp => "YYYY-MM-DD HH:MM:SS, or a date",
            Kind::Text | Kind::Other => "text",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The warehouse's type name, as values are cast to it.
    pub sql_type: String,
    pub kind: Kind,
}

impl Column {
    pub fn new(name: &str, sql_type: &str) -> Column {
        Column {
            name: name.to_owned(),
            sql_type: sql_type.to_owned(),
            kind: Kind::of(sql_type),
        }
    }

    /// The column of the page query's one table, `t`: qualified, so that ORDER BY and WHERE mean the
    /// stored value, never the text the select list renders under the same name (hash keys would sort
    /// as text).
    pub fn quoted(&self) -> String {
        format!("t.{}", quote(&self.name))
    }

    /// JSON has no dates: those go out as text, cast in SQL. (128-bit hash keys go out as text too, but
    /// formatted on the way out: DuckDB's cast of one to text costs about 70 µs.)
    pub fn as_text(&self) -> bool {
        matches!(self.kind, Kind::Date | Kind::Timestamp | Kind::Other)
    }

    pub fn select_expr(&self) -> String {
        if self.as_text() {
            format!(
                "CAST({} AS VARCHAR) AS {}",
                self.quoted(),
                quote(&self.name)
            )
        } else {
            format!("{} AS {}", self.quoted(), quote(&self.name))
        }
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServedTable {
    /// `schema.table`, as the API names it.
    pub name: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<Column>,
    /// Indexes of the unique key's columns.
    pub key: Vec<usize>,
}

impl ServedTable {
    /// A table with these columns; key columns that are not among them are left out.
    pub fn new(schema: &str, table: &str, columns: Vec<Column>, key: &[&str]) -> ServedTable {
        let key = key
            .iter()
            .filter_map(|k| columns.iter().position(|c| c.name == *k))
            .collect();
        ServedTable {
            name: format!("{schema}.{table}"),
            schema: schema.to_owned(),
            table: table.to_owned(),
            columns,
            key,
        }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The table as the page query's `FROM` names it (alias `t`).
    pub fn sql_name(&self) -> String {
        format!("{}.{} t", quote(&self.schema), quote(&self.table))
    }
}

/// A mart's shape for unit tests: a date, an integer, text and a 128-bit hash key, keyed by two columns.
#[cfg(test)]
pub(crate) fn sample_table() -> ServedTable {
    ServedTable::new(
        "marts",
        "top_songs_daily",
        vec![
            Column::new("date", "DATE"),
            Column::new("rank", "BIGINT"),
            Column::new("song", "VARCHAR"),
            Column::new("plays", "BIGINT"),
            Column::new("song_hk", "UHUGEINT"),
        ],
        &["date", "rank"],
    )
}

/// The tables to serve, from the warehouse's columns (`schema`, `table`, `column`, `type`, in order):
/// marts with a known key, and, with `expose_raw`, the raw event tables and personal columns.
pub fn served(columns: &[(String, String, String, String)], expose_raw: bool) -> Vec<ServedTable> {
    let mut tables: Vec<ServedTable> = Vec::new();
    let mut add = |schema: &str, table: &str, key: &[&str]| {
        let cols: Vec<Column> = columns
            .iter()
            .filter(|(s, t, c, _)| {
                s == schema && t == table && (expose_raw || !PERSONAL_COLUMNS.contains(&c.as_str()))
            })
            .map(|(_, _, c, ty)| Column::new(c, ty))
            .collect();
        if !cols.is_empty() {
            tables.push(ServedTable::new(schema, table, cols, key));
        }
    };
    for (mart, key) in playlog_vault::MART_KEYS {
        add("marts", mart, key);
    }
    if expose_raw {
        for stream in playlog_model::Stream::ALL {
            add("raw", stream.topic(), &["_topic", "_partition", "_offset"]);
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(s: &str, t: &str, c: &str, ty: &str) -> (String, String, String, String) {
        (s.into(), t.into(), c.into(), ty.into())
    }

    #[test]
    fn marts_are_served_without_personal_columns_and_raw_only_when_exposed() {
        let columns = vec![
            col("marts", "listens", "listen_hk", "UHUGEINT"),
            col("marts", "listens", "first_name", "VARCHAR"),
            col("marts", "listens", "city", "VARCHAR"),
            col("raw", "listen_events", "_topic", "VARCHAR"),
            col("raw", "listen_events", "_partition", "INTEGER"),
            col("raw", "listen_events", "_offset", "BIGINT"),
            col("raw", "_kafka_offsets", "topic", "VARCHAR"),
            col("vault", "hub_user", "user_hk", "UHUGEINT"),
        ];
        let served_default = served(&columns, false);
        assert_eq!(served_default.len(), 1);
        let listens = &served_default[0];
        assert_eq!(listens.name, "marts.listens");
        assert_eq!(
            listens
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["listen_hk", "city"]
        );
        assert_eq!(listens.key, vec![0]);
        let exposed = served(&columns, true);
        let names: Vec<&str> = exposed.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["marts.listens", "raw.listen_events"]);
        assert_eq!(exposed[0].columns.len(), 3);
        assert_eq!(exposed[1].key, vec![0, 1, 2]);
    }

    #[test]
    fn types_decide_checking_and_rendering() {
        assert_eq!(Kind::of("BIGINT"), Kind::Integer);
        assert_eq!(Kind::of("TIMESTAMP WITH TIME ZONE"), Kind::Timestamp);
        assert_eq!(Kind::of("DECIMAL(18,3)"), Kind::Float);
        assert!(Column::new("d", "DATE").as_text());
        assert!(!Column::new("k", "UHUGEINT").as_text());
        assert!(!Column::new("n", "BIGINT").as_text());
        assert_eq!(Column::new("a\"b", "VARCHAR").quoted(), "t.\"a\"\"b\"");
    }
}
