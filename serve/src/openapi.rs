//! The API's OpenAPI 3.0 document, generated from the served tables (their columns, types and keys), so
//! that it always says what the server answers: one path per table and format, every filter parameter
//! of every column, and each row's schema.

use serde_json::{Map, Value as Json, json};

use crate::aggregates::{AGGREGATES, DEFAULT_LIMIT, MAX_LIMIT};
use crate::query::{DEFAULT_PAGE, MAX_PAGE, Op};
use crate::tables::{Column, Kind, ServedTable};

/// The document for `tables`.
pub fn document(tables: &[ServedTable]) -> Json {
    let mut paths = Map::new();
    paths.insert(
        "/api/v1".into(),
        json!({"get": {
            "summary": "The served tables, with their columns, types and unique keys",
            "operationId": "tables",
            "responses": {"200": {"description": "The served tables", "content": {"application/json": {"schema": {"type": "object"}}}}}
        }}),
    );
    for table in tables {
        let parameters = parameters(table);
        paths.insert(
            format!("/api/v1/{}.json", table.name),
            json!({"get": {
                "summary": format!("A page of {}", table.name),
                "description": page_description(table),
                "operationId": format!("{}_json", table.name.replace('.', "_")),
                "parameters": parameters,
                "responses": {
                    "200": {"description": "A page of rows", "content": {"application/json": {"schema": page_schema(table)}}},
                    "400": error_response("A parameter the API refuses; `parameter` names it"),
                    "404": error_response("No such table is served"),
                }
            }}),
        );
        paths.insert(
            format!("/api/v1/{}.csv", table.name),
            json!({"get": {
                "summary": format!("A page of {}, as CSV (a header line, then one line per row)", table.name),
                "operationId": format!("{}_csv", table.name.replace('.', "_")),
                "parameters": parameters,
                "responses": {
                    "200": {"description": "A page of rows", "content": {"text/csv": {"schema": {"type": "string"}}}},
                    "400": error_response("A parameter the API refuses; `parameter` names it"),
                }
            }}),
        );
    }
    aggregate_paths(&mut paths);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Playlog API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read-only access to Playlog's marts. Filters are column__op=value (column=value is exact); \
                            pages are keyset pages over the sort keys and the table's unique key: follow next_url."
        },
        "paths": paths,
    })
}

/// One path per aggregate (the dashboard's figures), with its parameters and its rows' schema.
fn aggregate_paths(paths: &mut Map<String, Json>) {
    paths.insert(
        "/api/v1/aggregates".into(),
        json!({"get": {
            "summary": "The aggregates, with their columns and their meaning",
            "operationId": "aggregates",
            "responses": {"200": {"description": "The aggregates", "content": {"application/json": {"schema": {"type": "object"}}}}}
        }}),
    );
    paths.insert(
        "/api/v1/pipeline.json".into(),
        json!({"get": {
            "summary": "The pipeline's state: consumer lag, ingest rate, freshness, dead letters and vault runs (from this process's metrics or Prometheus: `metrics`, null without a source), and each raw table's newest load and the last vault run (from the warehouse)",
            "operationId": "pipeline",
            "responses": {"200": {"description": "The pipeline's state", "content": {"application/json": {"schema": {"type": "object"}}}}}
        }}),
    );
    for aggregate in AGGREGATES {
        let mut parameters = vec![
            query_param(
                "from",
                "First day, inclusive (default: the first day the marts hold)",
                json!({"type": "string", "format": "date"}),
            ),
            query_param(
                "to",
                "Last day, inclusive (default: the last day the marts hold)",
                json!({"type": "string", "format": "date"}),
            ),
        ];
        if aggregate.limited {
            parameters.push(query_param(
                "limit",
                "Rows at most",
                json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
            ));
        }
        if let Some(default) = aggregate.by.first() {
            parameters.push(query_param(
                "by",
                "What to rank by",
                json!({"type": "string", "enum": aggregate.by, "default": default}),
            ));
        }
        let properties: Map<String, Json> = aggregate
            .columns
            .iter()
            .map(|(name, kind, description)| {
                (
                    (*name).to_owned(),
                    json!({"type": kind, "nullable": true, "description": description}),
                )
            })
            .collect();
        paths.insert(
            format!("/api/v1/aggregates/{}.json", aggregate.name),
            json!({"get": {
                "summary": aggregate.summary,
                "operationId": format!("aggregate_{}", aggregate.name),
                "parameters": parameters,
                "responses": {
                    "200": {"description": "The figures over the range", "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {
                            "aggregate": {"type": "string"},
                            "from": {"type": "string", "format": "date", "nullable": true},
                            "to": {"type": "string", "format": "date", "nullable": true},
                            "rows": {"type": "array", "items": {"type": "object", "properties": properties}},
                            "as_of": {"type": "string", "nullable": true, "description": "When the marts were last brought up to date"},
                        }
                    }}}},
                    "400": error_response("A parameter the API refuses; `parameter` names it"),
                    "503": error_response("The marts do not exist yet (no vault run so far)"),
                }
            }}),
        );
    }
}

fn page_description(table: &ServedTable) -> String {
    let key: Vec<&str> = table
        .key
        .iter()
        .map(|k| table.columns[*k].name.as_str())
        .collect();
    format!(
        "Rows in the order of `_sort`/`_sort_desc`, ties broken by the unique key ({}). `total` counts every row \
         the filters admit; `as_of` is when the data was last brought up to date.",
        key.join(", ")
    )
}

fn error_response(description: &str) -> Json {
    json!({"description": description, "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "parameter": {"type": "string", "nullable": true}}
    }}}})
}

fn parameters(table: &ServedTable) -> Vec<Json> {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let mut out = vec![
        query_param(
            "_sort",
            "Columns to sort by, ascending (comma-separated or repeated)",
            json!({"type": "string", "enum": names}),
        ),
        query_param(
            "_sort_desc",
            "Columns to sort by, descending (comma-separated or repeated)",
            json!({"type": "string", "enum": names}),
        ),
        query_param(
            "_size",
            "Rows per page",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}),
        ),
        query_param(
            "_next",
            "The previous page's `next` token",
            json!({"type": "string"}),
        ),
        query_param(
            "_shape",
            "Rows as objects or as arrays in column order",
            json!({"type": "string", "enum": ["objects", "arrays"], "default": "objects"}),
        ),
    ];
    for column in &table.columns {
        for (op, kind) in Op::ALL {
            if kind == Op::Contains && column.kind != Kind::Text {
                continue;
            }
            let (description, schema) = match kind {
                Op::IsNull => (
                    format!("{} is NULL (1) or not (0)", column.name),
                    json!({"type": "string", "enum": ["1", "0"]}),
                ),
                Op::In => (
                    format!("{} is one of these (comma-separated)", column.name),
                    json!({"type": "string"}),
                ),
                Op::Contains => (
                    format!("{} contains this text", column.name),
                    json!({"type": "string"}),
                ),
                _ => (
                    format!("{} {op} this value ({})", column.name, column.sql_type),
                    value_schema(column),
                ),
            };
            out.push(query_param(
                &format!("{}__{op}", column.name),
                &description,
                schema,
            ));
        }
    }
    out
}

fn query_param(name: &str, description: &str, schema: Json) -> Json {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// A column's values as JSON carries them (128-bit hash keys as decimal text).
fn value_schema(column: &Column) -> Json {
    let wide = matches!(column.sql_type.as_str(), "HUGEINT" | "UHUGEINT");
    match column.kind {
        Kind::Integer if wide => json!({"type": "string", "pattern": "^-?[0-9]+$"}),
        Kind::Integer => json!({"type": "integer"}),
        Kind::Float => json!({"type": "number"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Date => json!({"type": "string", "format": "date"}),
        Kind::Timestamp => {
            json!({"type": "string", "description": "YYYY-MM-DD HH:MM:SS[.ffffff], UTC"})
        }
        Kind::Text | Kind::Other => json!({"type": "string"}),
    }
}

fn page_schema(table: &ServedTable) -> Json {
    let properties: Map<String, Json> = table
        .columns
        .iter()
        .map(|c| {
            let mut schema = value_schema(c);
            if let Some(object) = schema.as_object_mut() {
                object.insert("nullable".into(), json!(true));
            }
            (c.name.clone(), schema)
        })
        .collect();
    json!({
        "type": "object",
        "properties": {
            "table": {"type": "string"},
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object", "properties": properties}},
            "total": {"type": "integer"},
            "next": {"type": "string", "nullable": true},
            "next_url": {"type": "string", "nullable": true},
            "as_of": {"type": "string", "nullable": true},
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.
mod tests {
    use super::*;

    #[test]
    fn every_table_format_and_filter_is_documented() {
        let table = crate::tables::sample_table();
        let doc = document(&[table]);
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v1"));
        let get = &paths["/api/v1/marts.top_songs_daily.json"]["get"];
        assert!(paths.contains_key("/api/v1/marts.top_songs_daily.csv"));
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for expected in [
            "_sort",
            "_next",
            "date__gte",
            "rank__in",
            "song__contains",
            "song_hk__exact",
            "date__isnull",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        assert!(
            !names.contains(&"rank__contains"),
            "contains is for text only"
        );
        let row = &get["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["rows"]
            ["items"]["properties"];
        assert_eq!(row["rank"]["type"], "integer");
        assert_eq!(row["date"]["format"], "date");
        assert_eq!(
            row["song_hk"]["type"], "string",
            "128-bit keys travel as text"
        );
        assert!(
            get["description"]
                .as_str()
                .unwrap()
                .contains("(date, rank)")
        );
    }
}
