"""PostgreSQL: the sequencer's round as one server-side function, so that the lock which
orders the audit log is held for no client round trip.

`tracker_place(wanted, channel, batch)` takes the sequencer's transaction-level advisory
lock (waiting for it), gives every committed pending leaf its position in notification-id
order — computing the leaf hash, and the tree nodes each append completes, exactly as
`tracker.audit.log` and `tracker.audit.merkle` do (RFC 9162: SHA-256, 0x00 leaf and 0x01
node prefixes; the canonical bytes documented in the README) — moves them into
`audit_leaves`, notifies `channel`, and returns the positions of the notification ids
`wanted`. It runs as one statement, so in one transaction whose commit releases the lock:
positions commit strictly in order, and a failing or dying caller never leaves the lock held.
The right edge of the tree is read from the stored nodes on every call (log2(n) point reads),
never cached, so several processes can place in turn.

`tracker_json_string` writes a string as Python's `json.dumps(..., ensure_ascii=True)` does
(the canonical bytes' escaping): a test compares the two on arbitrary text.
"""

from __future__ import annotations

LOCK = 7_340_112_002  # advisory-lock id of the sequencer (transaction-level)

JSON_STRING = r"""
CREATE OR REPLACE FUNCTION tracker_json_string(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  out text := '"';
  c text;
  n integer;
BEGIN
  IF t ~ '^[ -~]*$' AND strpos(t, '"') = 0 AND strpos(t, '\') = 0 THEN
    RETURN '"' || t || '"';
  END IF;
  FOREACH c IN ARRAY regexp_split_to_array(t, '') LOOP
    n := ascii(c);
    IF c = '"' THEN out := out || '\"';
    ELSIF c = '\' THEN out := out || '\\';
    ELSIF n = 10 THEN out := out || '\n';
    ELSIF n = 13 THEN out := out || '\r';
    ELSIF n = 9 THEN out := out || '\t';
    ELSIF n = 8 THEN out := out || '\b';
    ELSIF n = 12 THEN out := out || '\f';
    ELSIF n BETWEEN 32 AND 126 THEN out := out || c;
    ELSIF n > 65535 THEN  -- a UTF-16 surrogate pair, as Python writes it
      n := n - 65536;
      out := out || '\u' || lpad(to_hex(55296 | ((n >> 10) & 1023)), 4, '0')
                 || '\u' || lpad(to_hex(56320 | (n & 1023)), 4, '0');
    ELSE out := out || '\u' || lpad(to_hex(n), 4, '0');
    END IF;
  END LOOP;
  RETURN out || '"';
END $$
"""

PLACE_FUNCTION = r"""
CREATE OR REPLACE FUNCTION tracker_place(wanted bigint[], channel text, batch integer)
RETURNS TABLE (notification_id bigint, "position" bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  size bigint;
  start bigint := 0;
  lvl integer;
  h bytea;
  lvls integer[] := '{}';    -- the right edge: perfect subtrees, highest level first
  hashes bytea[] := '{}';
  n integer;
  r record;
  leaf bytea;
  blob bytea;
  placed bigint[] := '{}';
BEGIN
  PERFORM pg_advisory_xact_lock(LOCK_ID);
  -- Each statement below takes its snapshot after the lock: it sees the last holder's commit.
  FOR r IN SELECT p.notification_id AS nid, p.allegation_id, p.version, p.topic,
                  p.recorded_at, p.payload_sha256
           FROM pending_leaves p ORDER BY p.notification_id LIMIT batch LOOP
    IF size IS NULL THEN  -- the first pending leaf: read the tree's right edge
      SELECT a.position + 1 INTO size FROM audit_leaves a ORDER BY a.position DESC LIMIT 1;
      size := coalesce(size, 0);
      FOR lvl IN REVERSE 62..0 LOOP
        IF (size >> lvl) & 1 = 1 THEN
          -- node (lvl, start >> lvl) is stored in the row of its last leaf
          SELECT substring(a.nodes FROM 32 * lvl + 1 FOR 32) INTO h FROM audit_leaves a
            WHERE a.position = (((start >> lvl) + 1) << lvl) - 1;
          IF h IS NULL OR length(h) <> 32 THEN
            RAISE EXCEPTION 'audit tree node (%, %) is missing: run tracker audit verify',
              lvl, start >> lvl;
          END IF;
          lvls := array_append(lvls, lvl);
          hashes := array_append(hashes, h);
          start := start + (1::bigint << lvl);
        END IF;
      END LOOP;
    END IF;
    leaf := sha256('\x00'::bytea || convert_to(
      '[' || size || ',' || tracker_json_string(r.allegation_id) || ',' || r.version || ','
      || tracker_json_string(r.topic) || ',' || tracker_json_string(r.recorded_at) || ',"'
      || encode(r.payload_sha256, 'base64') || '"]', 'UTF8'));
    blob := leaf;  -- the tree's own copy of the leaf, then the nodes this append completes
    lvls := array_append(lvls, 0);
    hashes := array_append(hashes, leaf);
    n := cardinality(lvls);
    WHILE n >= 2 AND lvls[n - 1] = lvls[n] LOOP
      h := sha256('\x01'::bytea || hashes[n - 1] || hashes[n]);
      lvls := array_append(lvls[1:n - 2], lvls[n] + 1);
      hashes := array_append(hashes[1:n - 2], h);
      blob := blob || h;
      n := n - 1;
    END LOOP;
    INSERT INTO audit_leaves (position, notification_id, allegation_id, version, topic,
                              recorded_at, payload_sha256, leaf_hash, nodes)
      VALUES (size, r.nid, r.allegation_id, r.version, r.topic, r.recorded_at,
              r.payload_sha256, leaf, blob);
    placed := array_append(placed, r.nid);
    size := size + 1;
  END LOOP;
  IF size IS NOT NULL THEN
    DELETE FROM pending_leaves p WHERE p.notification_id = ANY (placed);
    PERFORM pg_notify(channel, '');  -- wakes followers that listen (the projector)
  END IF;
  RETURN QUERY SELECT a.notification_id, a.position FROM audit_leaves a
    WHERE a.notification_id = ANY (wanted);
END $$
""".replace("LOCK_ID", str(LOCK))

FUNCTIONS = [JSON_STRING, PLACE_FUNCTION]
