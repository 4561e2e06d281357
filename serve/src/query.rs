//! One API request over one table, as a pure translation: query-string parameters → a validated
//! [`Request`] → DuckDB SQL with every value bound as a parameter. No I/O, so that every filter, sort,
//! page and refusal is unit-tested.
//!
//! Conventions are Datasette's where they fit: `column__op=value` filters (`column=value` is `exact`),
//! `_sort` / `_sort_desc` (comma-separated or repeated, several keys), `_size`, an opaque `_next` token,
//! `_shape=objects|arrays`. Identifiers come only from the table's real columns; values only travel as
//! bound parameters, cast to the column's type in SQL.

use base64::Engine;

use crate::tables::{Column, Kind, ServedTable};

pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// A request the API refuses (HTTP 400), naming the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct BadRequest {
    pub parameter: String,
    pub message: String,
}

pub(crate) fn bad(parameter: &str, message: impl Into<String>) -> BadRequest {
    BadRequest {
        parameter: parameter.to_owned(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Exact,
    Not,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
    IsNull,
}

impl Op {
    pub const ALL: [(&'static str, Op); 9] = [
        ("exact", Op::Exact),
        ("not", Op::Not),
        ("gt", Op::Gt),
        ("gte", Op::Gte),
        ("lt", Op::Lt),
        ("lte", Op::Lte),
        ("in", Op::In),
        ("contains", Op::Contains),
        ("isnull", Op::IsNull),
    ];

    fn parse(name: &str) -> Option<Op> {
        Op::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: usize,
    pub op: Op,
    /// The values to bind (one, or several for `in`; none for `isnull`).
    pub values: Vec<String>,
    /// For `isnull`: true for IS NULL, false for IS NOT NULL.
    pub null: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Objects,
    Arrays,
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub filters: Vec<Filter>,
    /// The page's order: the requested sort keys, then the table's key (ascending) to break ties.
    pub order: Vec<(usize, bool)>,
    pub size: usize,
    /// The order columns' values (as text, `None` for NULL) of the previous page's last row.
    pub after: Option<Vec<Option<String>>>,
    pub shape: Shape,
}

/// Parses the query-string pairs of a request on `table`.
pub fn parse(table: &ServedTable, params: &[(String, String)]) -> Result<Request, BadRequest> {
    let mut filters = Vec::new();
    let mut order: Vec<(usize, bool)> = Vec::new();
    let mut size = DEFAULT_PAGE;
    let mut next = None;
    let mut shape = Shape::Objects;
    for (name, value) in params {
        match name.as_str() {
            "_sort" | "_sort_desc" => {
                let desc = name == "_sort_desc";
                for column in value.split(',').filter(|c| !c.is_empty()) {
                    let index = column_index(table, name, column)?;
                    if order.iter().any(|(i, _)| *i == index) {
                        return Err(bad(name, format!("{column} is sorted on twice")));
                    }
                    order.push((index, desc));
                }
            }
            "_size" => {
                size = value
                    .parse::<usize>()
                    .ok()
                    .filter(|s| (1..=MAX_PAGE).contains(s))
                    .ok_or_else(|| {
                        bad(
                            name,
                            format!("{value:?} is not a page size from 1 to {MAX_PAGE}"),
                        )
                    })?;
            }
            "_next" => next = Some(value.clone()),
            "_shape" => {
                shape = match value.as_str() {
                    "objects" => Shape::Objects,
                    "arrays" => Shape::Arrays,
                    other => return Err(bad(name, format!("{other:?} is not objects or arrays"))),
                }
            }
            other if other.starts_with('_') => {
                return Err(bad(
                    other,
                    "unknown parameter (known: _sort, _sort_desc, _size, _next, _shape, and column__op filters)",
                ));
            }
            filter => filters.push(parse_filter(table, filter, value)?),
        }
    }
    for key in &table.key {
        if !order.iter().any(|(i, _)| i == key) {
            order.push((*key, false));
        }
    }
    let after = match next {
        None => None,
        Some(token) => Some(decode_token(&token, order.len())?),
    };
    Ok(Request {
        filters,
        order,
        size,
        after,
        shape,
    })
}

fn column_index(table: &ServedTable, parameter: &str, name: &str) -> Result<usize, BadRequest> {
    table.column(name).ok_or_else(|| {
        bad(
            parameter,
            format!(
                "no column {name:?} in {} (columns: {})",
                table.name,
                table
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn parse_filter(table: &ServedTable, parameter: &str, value: &str) -> Result<Filter, BadRequest> {
    let (column, op) = match parameter.rsplit_once("__") {
        Some((column, op)) => {
            let op = Op::parse(op).ok_or_else(|| {
                bad(
                    parameter,
                    format!(
                        "unknown operator {op:?} (known: {})",
                        Op::ALL.map(|(n, _)| n).join(", ")
                    ),
                )
            })?;
            (column, op)
        }
        None => (parameter, Op::Exact),
    };
    let index = column_index(table, parameter, column)?;
    let c = &table.columns[index];
    match op {
        Op::IsNull => {
            let null = match value {
                "1" | "true" => true,
                "0" | "false" => false,
                other => return Err(bad(parameter, format!("{other:?} is not 1 or 0"))),
            };
            Ok(Filter {
                column: index,
                op,
                values: Vec::new(),
                null,
            })
        }
        Op::Contains if c.kind != Kind::Text => Err(bad(
            parameter,
            format!(
                "contains applies to text columns; {} is {}",
                c.name, c.sql_type
            ),
        )),
        Op::In => {
            let values: Vec<String> = value.split(',').map(str::to_owned).collect();
            for v in &values {
                check_value(c, parameter, v)?;
            }
            Ok(Filter {
                column: index,
                op,
                values,
                null: false,
            })
        }
        _ => {
            if op != Op::Contains {
                check_value(c, parameter, value)?;
            }
            Ok(Filter {
                column: index,
                op,
                values: vec![value.to_owned()],
                null: false,
            })
        }
    }
}

/// A value the column's type can take, checked here so that the 400 names the parameter.
fn check_value(column: &Column, parameter: &str, value: &str) -> Result<(), BadRequest> {
    let ok = match column.kind {
        Kind::Integer => value.parse::<i128>().is_ok() || value.parse::<u128>().is_ok(),
        Kind::Float => value.parse::<f64>().is_ok(),
        Kind::Bool => matches!(value, "true" | "false" | "1" | "0"),
        Kind::Date => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
        Kind::Timestamp => {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .any(|f| chrono::NaiveDateTime::parse_from_str(value, f).is_ok())
                || chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
        }
        Kind::Text | Kind::Other => true,
    };
    if ok {
        Ok(())
    } else {
        Err(bad(
            parameter,
            format!(
                "{value:?} is not a {} ({})",
                column.sql_type,
                column.kind.example()
            ),
        ))
    }
}

/// The opaque `_next` token: the order columns' values of a page's last row.
pub fn encode_token(values: &[Option<String>]) -> String {
    let json = serde_json::to_vec(values).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_token(token: &str, len: usize) -> Result<Vec<Option<String>>, BadRequest> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|json| serde_json::from_slice::<Vec<Option<String>>>(&json).ok())
        .filter(|v| v.len() == len)
        .ok_or_else(|| {
            bad(
                "_next",
                "not a token this API made for this sort order (take next_url from the previous page)",
            )
        })
}

/// SQL and the values it binds, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Option<String>>,
}

/// The page's query: the served columns (times as text). One row more than the page, to tell whether
/// another follows.
///
/// The page is chosen on the stored values first and rendered after: DuckDB computes a select list for
/// every row before a top-N, and its casts add up.
pub fn page_sql(table: &ServedTable, request: &Request) -> Sql {
    let mut params = Vec::new();
    let mut conditions = filter_conditions(table, &request.filters, &mut params);
    if let Some(after) = &request.after {
        conditions.push(keyset_condition(table, &request.order, after, &mut params));
    }
    let select: Vec<String> = table.columns.iter().map(|c| c.select_expr()).collect();
    let order: Vec<String> = request
        .order
        .iter()
        .map(|(c, desc)| {
            format!(
                "{} {} NULLS LAST",
                table.columns[*c].quoted(),
                if *desc { "DESC" } else { "ASC" }
            )
        })
        .collect();
    let order = order.join(", ");
    Sql {
        text: format!(
            "SELECT {} FROM (SELECT * FROM {}{} ORDER BY {order} LIMIT {}) t ORDER BY {order}",
            select.join(", "),
            table.sql_name(),
            where_clause(&conditions),
            request.size + 1
        ),
        params,
    }
}

/// The count of every row the filters admit (all pages).
pub fn count_sql(table: &ServedTable, request: &Request) -> Sql {
    let mut params = Vec::new();
    let conditions = filter_conditions(table, &request.filters, &mut params);
    Sql {
        text: format!(
            "SELECT count(*) FROM {}{}",
            table.sql_name(),
            where_clause(&conditions)
        ),
        params,
    }
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

fn bind(column: &Column, value: &str, params: &mut Vec<Option<String>>) -> String {
    params.push(Some(value.to_owned()));
    format!("CAST(? AS {})", column.sql_type)
}

fn filter_conditions(
    table: &ServedTable,
    filters: &[Filter],
    params: &mut Vec<Option<String>>,
) -> Vec<String> {
    filters
        .iter()
        .map(|f| {
            let c = &table.columns[f.column];
            let col = c.quoted();
            match f.op {
                Op::IsNull if f.null => format!("{col} IS NULL"),
                Op::IsNull => format!("{col} IS NOT NULL"),
                Op::Contains => {
                    params.push(Some(f.values[0].clone()));
                    format!("contains({col}, CAST(? AS VARCHAR))")
                }
                Op::In => {
                    let list: Vec<String> = f.values.iter().map(|v| bind(c, v, params)).collect();
                    format!("{col} IN ({})", list.join(", "))
                }
                op => {
                    let symbol = match op {
                        Op::Exact => "=",
                        Op::Not => "IS DISTINCT FROM",
                        Op::Gt => ">",
                        Op::Gte => ">=",
                        Op::Lt => "<",
                        _ => "<=",
                    };
                    format!("{col} {symbol} {}", bind(c, &f.values[0], params))
                }
            }
        })
        .collect()
}

/// Rows after `after` in the page order (NULLS LAST in both directions): for each order column, the
/// rows equal on every column before it and past it on this one.
fn keyset_condition(
    table: &ServedTable,
    order: &[(usize, bool)],
    after: &[Option<String>],
    params: &mut Vec<Option<String>>,
) -> String {
    let mut alternatives = Vec::new();
    for i in 0..order.len() {
        let mut parts = Vec::new();
        for (j, (c, _)) in order.iter().enumerate().take(i) {
            let column = &table.columns[*c];
            parts.push(match &after[j] {
                None => format!("{} IS NULL", column.quoted()),
                Some(v) => format!("{} = {}", column.quoted(), bind(column, v, params)),
            });
        }
        let (c, desc) = order[i];
        let column = &table.columns[c];
        match &after[i] {
            // Nothing sorts after NULL but other NULLs, which the later columns order.
            None => continue,
            Some(v) => {
                let symbol = if desc { "<" } else { ">" };
                let col = column.quoted();
                parts.push(format!(
                    "({col} {symbol} {} OR {col} IS NULL)",
                    bind(column, v, params)
                ));
            }
        }
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    if alternatives.is_empty() {
        "FALSE".into()
    } else {
        format!("({})", alternatives.join(" OR "))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.
mod tests {
    use super::*;

    fn table() -> ServedTable {
        crate::tables::sample_table()
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    fn request(pairs: &[(&str, &str)]) -> Result<Request, BadRequest> {
        parse(&table(), &params(pairs))
    }

    #[test]
    fn filters_bind_every_value_cast_to_the_columns_type() {
        let r = request(&[
            ("plays__gte", "10"),
            ("song__contains", "Love"),
            ("date", "2026-01-02"),
        ])
        .unwrap();
        let sql = page_sql(&table(), &r);
        assert_eq!(
            sql.text,
            "SELECT CAST(t.\"date\" AS VARCHAR) AS \"date\", t.\"rank\" AS \"rank\", t.\"song\" AS \"song\", t.\"plays\" AS \"plays\", \
             t.\"song_hk\" AS \"song_hk\" FROM (SELECT * FROM \"marts\".\"top_songs_daily\" t \
             WHERE t.\"plays\" >= CAST(? AS BIGINT) AND contains(t.\"song\", CAST(? AS VARCHAR)) AND t.\"date\" = CAST(? AS DATE) \
             ORDER BY t.\"date\" ASC NULLS LAST, t.\"rank\" ASC NULLS LAST LIMIT 101) t \
             ORDER BY t.\"date\" ASC NULLS LAST, t.\"rank\" ASC NULLS LAST"
        );
        assert_eq!(
            sql.params,
            vec![
                Some("10".into()),
                Some("Love".into()),
                Some("2026-01-02".into())
            ]
        );
        let count = count_sql(&table(), &r);
        assert!(
            count
                .text
                .starts_with("SELECT count(*) FROM \"marts\".\"top_songs_daily\" t WHERE")
        );
        assert_eq!(count.params.len(), 3);
    }

    #[test]
    fn every_operator_has_its_sql() {
        let cases = [
            ("plays__exact", "1", "t.\"plays\" = CAST(? AS BIGINT)"),
            (
                "plays__not",
                "1",
                "t.\"plays\" IS DISTINCT FROM CAST(? AS BIGINT)",
            ),
            ("plays__gt", "1", "t.\"plays\" > CAST(? AS BIGINT)"),
            ("plays__lt", "1", "t.\"plays\" < CAST(? AS BIGINT)"),
            ("plays__lte", "1", "t.\"plays\" <= CAST(? AS BIGINT)"),
            (
                "plays__in",
                "1,2,3",
                "t.\"plays\" IN (CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))",
            ),
            ("song__isnull", "1", "t.\"song\" IS NULL"),
            ("song__isnull", "0", "t.\"song\" IS NOT NULL"),
        ];
        for (name, value, expected) in cases {
            let r = request(&[(name, value)]).unwrap();
            let sql = count_sql(&table(), &r);
            assert!(
                sql.text.ends_with(&format!("WHERE {expected}")),
                "{name}: {}",
                sql.text
            );
        }
    }

    #[test]
    fn hash_keys_are_read_as_stored_and_sort_by_their_value() {
        let r = request(&[("_sort", "song_hk")]).unwrap();
        let sql = page_sql(&table(), &r);
        assert!(
            sql.text.contains("t.\"song_hk\" AS \"song_hk\""),
            "{}",
            sql.text
        );
        assert!(
            sql.text.contains("ORDER BY t.\"song_hk\" ASC NULLS LAST"),
            "{}",
            sql.text
        );
    }

    #[test]
    fn sorting_keeps_the_key_last_to_break_ties() {
        let r = request(&[("_sort_desc", "plays"), ("_sort", "song")]).unwrap();
        assert_eq!(r.order, vec![(3, true), (2, false), (0, false), (1, false)]);
        let r = request(&[("_sort", "rank,date")]).unwrap();
        assert_eq!(r.order, vec![(1, false), (0, false)]);
    }

    #[test]
    fn the_next_token_continues_after_the_last_row_in_the_page_order() {
        let first = request(&[("_sort_desc", "plays")]).unwrap();
        let token = encode_token(&[
            Some("7".into()),
            Some("2026-01-02".into()),
            Some("3".into()),
        ]);
        let r = request(&[("_sort_desc", "plays"), ("_next", &token)]).unwrap();
        assert_eq!(r.order, first.order);
        let sql = page_sql(&table(), &r);
        assert!(sql.text.contains(
            "WHERE (((t.\"plays\" < CAST(? AS BIGINT) OR t.\"plays\" IS NULL)) \
             OR (t.\"plays\" = CAST(? AS BIGINT) AND (t.\"date\" > CAST(? AS DATE) OR t.\"date\" IS NULL)) \
             OR (t.\"plays\" = CAST(? AS BIGINT) AND t.\"date\" = CAST(? AS DATE) AND (t.\"rank\" > CAST(? AS BIGINT) OR t.\"rank\" IS NULL)))"
        ), "{}", sql.text);
        assert_eq!(sql.params.len(), 6);
        // After a NULL, only rows NULL there too, ordered by the later columns.
        let token = encode_token(&[None, Some("2026-01-02".into()), Some("3".into())]);
        let r = request(&[("_sort_desc", "plays"), ("_next", &token)]).unwrap();
        let sql = page_sql(&table(), &r);
        assert!(
            sql.text
                .contains("WHERE ((t.\"plays\" IS NULL AND (t.\"date\" > CAST(? AS DATE)"),
            "{}",
            sql.text
        );
    }

    #[test]
    fn bad_input_is_refused_naming_the_parameter() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case; 9] = [
            (&[("nope", "1")], "nope", "no column \"nope\""),
            (
                &[("plays__like", "1")],
                "plays__like",
                "unknown operator \"like\"",
            ),
            (
                &[("plays__gt", "ten")],
                "plays__gt",
                "\"ten\" is not a BIGINT",
            ),
            (&[("date__lt", "yesterday")], "date__lt", "is not a DATE"),
            (
                &[("plays__contains", "1")],
                "plays__contains",
                "contains applies to text columns",
            ),
            (&[("_size", "5000")], "_size", "from 1 to 1000"),
            (&[("_sort", "plays;DROP TABLE x")], "_sort", "no column"),
            (&[("_next", "garbage")], "_next", "not a token"),
            (&[("_limit", "1")], "_limit", "unknown parameter"),
        ];
        for (pairs, parameter, message) in cases {
            let e = request(pairs).unwrap_err();
            assert_eq!(e.parameter, parameter);
            assert!(e.message.contains(message), "{parameter}: {}", e.message);
        }
    }

    #[test]
    fn injection_attempts_stay_values() {
        let evil = "x' OR '1'='1'; DROP TABLE marts.listens; --";
        let r = request(&[("song", evil), ("song__contains", evil)]).unwrap();
        let sql = page_sql(&table(), &r);
        assert!(!sql.text.contains("DROP"), "{}", sql.text);
        assert_eq!(
            sql.params,
            vec![Some(evil.to_owned()), Some(evil.to_owned())]
        );
        // A column name is never taken from the request, only matched against the real ones.
        assert!(request(&[("song\" OR 1=1 --", "x")]).is_err());
    }
}
