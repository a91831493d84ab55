//! Paging, the same for every list of the HTTP API (docs/protocol.md,
//! "Paging"): a keyset cursor. A page is `{ items, nextCursor? }`;
//! `nextCursor` goes back as `cursor` for the next page and is absent on
//! the last one.
//!
//! Why a keyset cursor rather than page numbers: chat, recordings and
//! sessions grow while someone pages through them, and an offset then
//! skips or repeats rows; a cursor names the last row seen, so it cannot.
//! It also costs the same at any depth (an index seek, not a scan of the
//! rows skipped).
//!
//! Older parameters stay as aliases: `perPage` for `limit`, `before` for
//! `cursor` (chat), and `page` (rooms, users, sessions), which switches to
//! offset paging and adds `page` and `perPage` to the answer, for the web
//! app's admin table, which shows page numbers.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use vtp_store::{Page, Paging};

use crate::error::{ApiError, ApiResult};

/// Highest `page` accepted (beyond, an offset scan is pointless anyway).
const MAX_PAGE: u32 = 1_000_000;

/// A list's page sizes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub default: u32,
    pub max: u32,
}

/// Rooms, users, sessions, recordings: 1–100, 20 by default.
pub const LIMITS: Limits = Limits {
    default: 20,
    max: 100,
};

/// What a list request said about paging, each field as on the wire.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageQuery<'a> {
    pub cursor: Option<&'a str>,
    /// `before` (chat): the older name of `cursor`.
    pub before: Option<&'a str>,
    pub limit: Option<u32>,
    /// `perPage`: the older name of `limit`.
    pub per_page: Option<u32>,
    /// `page`: offset paging, for older clients.
    pub page: Option<u32>,
}

impl<'a> PageQuery<'a> {
    /// The paging of a list that takes `cursor`/`limit` and, for older
    /// clients, `page`/`perPage` (rooms, users, sessions).
    pub fn paged(
        cursor: Option<&'a str>,
        limit: Option<u32>,
        page: Option<u32>,
        per_page: Option<u32>,
    ) -> Self {
        PageQuery {
            cursor,
            limit,
            page,
            per_page,
            before: None,
        }
    }

    /// The store's paging for a list whose rows are keyed by a time and an
    /// id of type `I`. A cursor this API did not make is a 400; a limit or
    /// page out of range a 422.
    pub fn paging<I: FromStr>(&self, limits: Limits) -> ApiResult<Paging<(DateTime<Utc>, I)>> {
        let (cursor_name, cursor) = match (self.cursor, self.before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give cursor or before (its older name), not both",
                ));
            }
            (None, Some(before)) => ("before", Some(before)),
            (cursor, None) => ("cursor", cursor),
        };
        let (limit_name, limit) = match (self.limit, self.per_page) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give limit or perPage (its older name), not both",
                ));
            }
            (None, Some(per_page)) => ("perPage", per_page),
            (limit, None) => ("limit", limit.unwrap_or(limits.default)),
        };
        if limit == 0 || limit > limits.max {
            return Err(ApiError::validation(format!(
                "{limit_name}: must be between 1 and {}",
                limits.max
            )));
        }
        if let Some(page) = self.page {
            if cursor.is_some() {
                return Err(ApiError::bad_request(format!(
                    "page and {cursor_name} cannot be combined: follow nextCursor instead"
                )));
            }
            if page == 0 || page > MAX_PAGE {
                return Err(ApiError::validation(format!(
                    "page: must be between 1 and {MAX_PAGE}"
                )));
            }
            return Ok(Paging::Offset {
                page,
                per_page: limit,
            });
        }
        let after = match cursor {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                ApiError::bad_request(format!("{cursor_name}: not a cursor returned by this API"))
            })?),
        };
        Ok(Paging::After { after, limit })
    }
}

/// A cursor: the key of the last row of a page, `<seconds>.<nanoseconds>_<id>`
/// (nanoseconds as nine digits, so that the time round-trips exactly).
/// Clients treat it as opaque.
pub fn encode_cursor<I: Display>((at, id): &(DateTime<Utc>, I)) -> String {
    format!("{}.{:09}_{id}", at.timestamp(), at.timestamp_subsec_nanos())
}

fn decode_cursor<I: FromStr>(cursor: &str) -> Option<(DateTime<Utc>, I)> {
    let (time, id) = cursor.split_once('_')?;
    let (secs, nanos) = time.split_once('.')?;
    if nanos.len() != 9 || !nanos.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
        return None;
    }
    let at = DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)?;
    Some((at, id.parse().ok()?))
}

/// A page of a list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageDto<T> {
    /// In the list's order (each list says which).
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Matching items over all pages (rooms, users and sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// With the `page` parameter only (deprecated): this page's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// With the `page` parameter only (deprecated): the page size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
}

impl<T> PageDto<T> {
    /// The answer for `page`, read with `paging`, its items mapped by `f`.
    pub fn new<S, I: Display>(
        page: Page<S, (DateTime<Utc>, I)>,
        paging: &Paging<(DateTime<Utc>, I)>,
        f: impl FnMut(S) -> T,
    ) -> Self {
        let (page_number, per_page) = match paging {
            Paging::Offset { page, per_page } => (Some(*page), Some(*per_page)),
            Paging::After { .. } => (None, None),
        };
        PageDto {
            items: page.items.into_iter().map(f).collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
            total: page.total,
            page: page_number,
            per_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::error::ErrorCode;

    type Key = (DateTime<Utc>, Uuid);

    fn code(query: PageQuery<'_>) -> Option<ErrorCode> {
        query.paging::<Uuid>(LIMITS).err().map(|e| e.code)
    }

    #[test]
    fn cursors_round_trip_exactly() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        for key in [(at, Uuid::new_v4()), (DateTime::UNIX_EPOCH, Uuid::nil())] {
            let cursor = encode_cursor(&key);
            assert_eq!(decode_cursor::<Uuid>(&cursor), Some(key), "{cursor}");
        }
        let room = (at, "physics-101".to_string());
        assert_eq!(
            decode_cursor::<String>(&encode_cursor(&room)),
            Some(room.clone())
        );
        for bad in [
            "",
            "garbage",
            "1700000000_x",
            "1700000000.123_x",
            "1700000000.1234567890_x",
            "1700000000.+12345678_x",
            "x.123456789_x",
            "1700000000.123456789_",
            "1700000000.123456789_not-a-uuid",
        ] {
            assert_eq!(decode_cursor::<Uuid>(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn queries_become_pagings() {
        let first: Paging<Key> = PageQuery::default().paging(LIMITS).unwrap();
        assert_eq!(first, Paging::first(20));
        let key = (DateTime::UNIX_EPOCH, Uuid::nil());
        let cursor = encode_cursor(&key);
        for query in [
            PageQuery {
                cursor: Some(&cursor),
                limit: Some(5),
                ..Default::default()
            },
            PageQuery {
                before: Some(&cursor),
                per_page: Some(5),
                ..Default::default()
            },
        ] {
            assert_eq!(
                query.paging(LIMITS).unwrap(),
                Paging::After {
                    after: Some(key),
                    limit: 5
                }
            );
        }
        let legacy: Paging<Key> = PageQuery {
            page: Some(3),
            per_page: Some(5),
            ..Default::default()
        }
        .paging(LIMITS)
        .unwrap();
        assert_eq!(
            legacy,
            Paging::Offset {
                page: 3,
                per_page: 5
            }
        );
    }

    #[test]
    fn bad_paging_is_refused() {
        let cursor = encode_cursor(&(DateTime::UNIX_EPOCH, Uuid::nil()));
        let cases = [
            (
                PageQuery {
                    cursor: Some("garbage"),
                    ..Default::default()
                },
                ErrorCode::BadRequest,
            ),
            (
                PageQuery {
                    cursor: Some(&cursor),
                    before: Some(&cursor),
                    ..Default::default()
                },
                ErrorCode::BadRequest,
            ),
            (
                PageQuery {
                    cursor: Some(&cursor),
                    page: Some(2),
                    ..Default::default()
                },
                ErrorCode::BadRequest,
            ),
            (
                PageQuery {
                    limit: Some(5),
                    per_page: Some(5),
                    ..Default::default()
                },
                ErrorCode::BadRequest,
            ),
            (
                PageQuery {
                    limit: Some(0),
                    ..Default::default()
                },
                ErrorCode::ValidationFailed,
            ),
            (
                PageQuery {
                    per_page: Some(101),
                    ..Default::default()
                },
                ErrorCode::ValidationFailed,
            ),
            (
                PageQuery {
                    page: Some(0),
                    ..Default::default()
                },
                ErrorCode::ValidationFailed,
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(code(query), Some(expected), "{query:?}");
        }
    }
}
