-- SPDX-License-Identifier: Apache-2.0
-- fieldhub history schema, version 1. Append-only: a released migration is never edited, since
-- databases in the field were built by it; a change is a new file NNNN_<what>.sql.
--
-- Times are microseconds since the Unix epoch (bigint), exactly as fieldhub holds them: no
-- rounding, no time zone, and no range error for a device clock in year 1 or 100000. The
-- readings_view below shows them as timestamptz for people and dashboards.
--
-- Row layout choices (readings are most of the database), as in the SQLite store:
-- - unit, adapter and link live in series; a reading's own column is NULL when it equals the
--   series' value (the normal case), so a row carries no repeated strings.
-- - source_ts is NULL when the source time is trusted, since ts then equals it.
-- - value_type says which of value_num / value_text holds the value (booleans as 0/1 in
--   value_num). value_text is bytea: PostgreSQL text cannot hold a NUL byte or invalid UTF-8,
--   and a reading's text value must round-trip byte for byte.

CREATE TABLE series(
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id text NOT NULL,
  metric text NOT NULL,
  unit text NOT NULL,
  adapter text NOT NULL,
  link text NOT NULL,
  UNIQUE (device_id, metric));

-- One partition per UTC day, created ahead by the writer and dropped by the retention setting.
-- The primary key is the dedupe key: a repeat of (series, time) is counted, not stored. Its
-- btree per partition also serves every reading query (one series, a time range); batches are
-- sorted by (series_id, ts) before they are copied in, so index inserts stay local.
CREATE TABLE readings(
  series_id integer NOT NULL,
  ts bigint NOT NULL,
  value_num double precision,
  value_text bytea,
  value_type smallint NOT NULL CHECK (value_type BETWEEN 0 AND 3),
  unit text,
  quality smallint NOT NULL CHECK (quality BETWEEN 0 AND 2),
  quality_reason text,
  received_ts bigint NOT NULL,
  source_ts bigint,
  source_ts_trusted boolean NOT NULL,
  adapter text,
  link text,
  PRIMARY KEY (series_id, ts)) PARTITION BY RANGE (ts);

-- The partitions of readings that exist: day = floor(ts / 86400000000).
CREATE TABLE reading_partitions(
  day integer PRIMARY KEY,
  name text NOT NULL UNIQUE);

CREATE TABLE events(
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id text NOT NULL,
  type text NOT NULL,
  priority smallint NOT NULL,
  ts bigint NOT NULL,
  received_ts bigint NOT NULL,
  source_ts bigint NOT NULL,
  source_ts_trusted boolean NOT NULL,
  attributes text NOT NULL,
  adapter text NOT NULL,
  link text NOT NULL,
  UNIQUE (device_id, type, ts));
CREATE INDEX events_by_ts ON events(ts);

-- Refused input with its raw bytes; never deduplicated (each refusal is a fact).
CREATE TABLE dead_letters(
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  received_ts bigint NOT NULL,
  source text NOT NULL,
  reason text NOT NULL,
  detail text NOT NULL,
  payload bytea NOT NULL);
CREATE INDEX dead_letters_by_reason ON dead_letters(reason, id);

-- Digests of recent messages without source timestamps, to recognise a redelivery.
CREATE TABLE replay_digests(
  digest bigint PRIMARY KEY,
  received_ts bigint NOT NULL);
CREATE INDEX replay_digests_by_age ON replay_digests(received_ts);

CREATE VIEW readings_view AS
  SELECT s.device_id, s.metric,
         to_timestamp(r.ts / 1e6) AS time,
         CASE r.value_type WHEN 1 THEN r.value_num END AS value,
         CASE r.value_type WHEN 2 THEN r.value_num <> 0 END AS value_bool,
         CASE r.value_type WHEN 3 THEN convert_from(r.value_text, 'UTF8') END AS value_text,
         coalesce(r.unit, s.unit) AS unit,
         (ARRAY['good', 'uncertain', 'bad'])[r.quality + 1] AS quality,
         r.quality_reason,
         to_timestamp(r.received_ts / 1e6) AS received_at,
         coalesce(r.adapter, s.adapter) AS adapter,
         coalesce(r.link, s.link) AS link
  FROM readings r JOIN series s ON s.id = r.series_id;
