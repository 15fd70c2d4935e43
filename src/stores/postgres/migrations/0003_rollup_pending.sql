-- SPDX-License-Identifier: Apache-2.0
-- fieldhub history schema, version 3: a batch's per-minute rollup aggregates are appended to
-- rollup_pending in the readings' transaction (binary COPY, no index) and folded into rollup_1m
-- and rollup_1h (an hour is the merge of its minutes) by the writer every few seconds, in one
-- transaction that deletes the rows it merges. Merging every batch's aggregates into the stored
-- buckets with ON CONFLICT DO UPDATE cost the writer two thirds of its time when a batch held one
-- reading per series (docs/PERFORMANCE.md); folding merges each bucket once per fold instead of
-- once per batch. Queries merge the pending rows of their series with the stored buckets, so what they
-- return is the same before and after a fold (docs/decisions/0014-rollups-folded.md).

CREATE TABLE rollup_pending(
  series_id integer NOT NULL,
  bucket bigint NOT NULL,
  value_min double precision NOT NULL,
  value_max double precision NOT NULL,
  value_sum double precision NOT NULL,
  value_count bigint NOT NULL,
  first_ts bigint NOT NULL,
  first_value double precision NOT NULL,
  last_ts bigint NOT NULL,
  last_value double precision NOT NULL);
