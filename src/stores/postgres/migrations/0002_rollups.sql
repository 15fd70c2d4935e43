-- SPDX-License-Identifier: Apache-2.0
-- fieldhub history schema, version 2: per-minute and per-hour rollups of every series
-- (src/stores/rollup.h), kept by the writer in the same transaction as the readings they
-- summarise. bucket is the bucket's start in microseconds (UTC, floor); first/last are the values
-- of the oldest and newest reading in the bucket, kept with their times so that late data merges
-- correctly and a counter's consumption is last minus the previous bucket's last.
-- Not partitioned: retention deletes expired buckets in bounded chunks through the primary key.
-- Every batch updates the buckets it touches again (a minute bucket of a 1 s series takes ~60
-- updates): room left in each page lets those be HOT updates (no index entry per version).

CREATE TABLE rollup_1m(
  series_id integer NOT NULL,
  bucket bigint NOT NULL,
  value_min double precision NOT NULL,
  value_max double precision NOT NULL,
  value_sum double precision NOT NULL,
  value_count bigint NOT NULL,
  first_ts bigint NOT NULL,
  first_value double precision NOT NULL,
  last_ts bigint NOT NULL,
  last_value double precision NOT NULL,
  PRIMARY KEY (series_id, bucket))
  WITH (fillfactor = 50);

CREATE TABLE rollup_1h (LIKE rollup_1m INCLUDING ALL) WITH (fillfactor = 50);

-- The readings stored before this version, aggregated as the writer does: finite numbers
-- (value_type 1), not bad (quality 2), not absurdly old.
INSERT INTO rollup_1m
  SELECT series_id, b, min(value_num), max(value_num), sum(value_num), count(*),
         min(ts), (array_agg(value_num ORDER BY ts))[1],
         max(ts), (array_agg(value_num ORDER BY ts DESC))[1]
  FROM (SELECT series_id, ts, value_num, ts - (((ts % 60000000) + 60000000) % 60000000) AS b
        FROM readings
        WHERE value_type = 1 AND quality < 2 AND ts >= -9000000000000000000
          AND value_num NOT IN ('NaN', 'Infinity', '-Infinity')) r
  GROUP BY series_id, b;

INSERT INTO rollup_1h
  SELECT series_id, b, min(value_num), max(value_num), sum(value_num), count(*),
         min(ts), (array_agg(value_num ORDER BY ts))[1],
         max(ts), (array_agg(value_num ORDER BY ts DESC))[1]
  FROM (SELECT series_id, ts, value_num, ts - (((ts % 3600000000) + 3600000000) % 3600000000) AS b
        FROM readings
        WHERE value_type = 1 AND quality < 2 AND ts >= -9000000000000000000
          AND value_num NOT IN ('NaN', 'Infinity', '-Infinity')) r
  GROUP BY series_id, b;
