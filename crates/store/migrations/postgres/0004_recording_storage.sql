-- Where a recording's files live: on this node's disk (`local`, under
-- <data-dir>/recordings/<id>/) or in the S3-compatible bucket (`remote`,
-- objects under `remote_prefix`). A `ready` recording stays `local` until
-- every file is confirmed uploaded. In step with ../sqlite/0004_*.sql.

ALTER TABLE recordings ADD COLUMN storage TEXT NOT NULL DEFAULT 'local'
    CHECK (storage IN ('local', 'remote'));
ALTER TABLE recordings ADD COLUMN remote_prefix TEXT;      -- object key prefix, set with 'remote'
ALTER TABLE recordings ADD COLUMN uploaded_at TIMESTAMPTZ; -- when the upload was confirmed
ALTER TABLE recordings ADD COLUMN upload_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recordings ADD COLUMN upload_error TEXT;       -- the last failed upload's reason, for operators
-- The uploader's work list: ready recordings still on local disk.
CREATE INDEX recordings_awaiting_upload ON recordings (state, storage);
