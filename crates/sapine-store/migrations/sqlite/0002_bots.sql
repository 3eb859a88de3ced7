-- Bots, their sealed secrets and crash history. Structured settings are JSON text.
CREATE TABLE bots (
    id             BLOB PRIMARY KEY NOT NULL,
    owner_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    command        TEXT NOT NULL,
    env            TEXT NOT NULL,
    restart_policy TEXT NOT NULL,
    limits         TEXT NOT NULL,
    status         TEXT NOT NULL,
    pid            BIGINT,
    started_at     TEXT,
    restarts       BIGINT NOT NULL,
    last_exit      TEXT,
    should_run     BOOLEAN NOT NULL,
    code_version   BIGINT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE INDEX bots_should_run ON bots (should_run) WHERE should_run;

CREATE TABLE bot_secrets (
    bot_id BLOB NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (bot_id, name)
);

CREATE TABLE bot_crashes (
    id         BLOB PRIMARY KEY NOT NULL,
    bot_id     BLOB NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    exit       TEXT NOT NULL,
    last_lines TEXT NOT NULL
);
CREATE INDEX bot_crashes_bot ON bot_crashes (bot_id, id);
