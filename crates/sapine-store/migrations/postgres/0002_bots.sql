-- Bots, their sealed secrets and crash history. Structured settings are JSON text.
CREATE TABLE bots (
    id             UUID PRIMARY KEY,
    owner_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    command        TEXT NOT NULL,
    env            TEXT NOT NULL,
    restart_policy TEXT NOT NULL,
    limits         TEXT NOT NULL,
    status         TEXT NOT NULL,
    pid            BIGINT,
    started_at     TIMESTAMPTZ,
    restarts       BIGINT NOT NULL,
    last_exit      TEXT,
    should_run     BOOLEAN NOT NULL,
    code_version   BIGINT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE INDEX bots_should_run ON bots (should_run) WHERE should_run;

CREATE TABLE bot_secrets (
    bot_id UUID NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (bot_id, name)
);

CREATE TABLE bot_crashes (
    id         UUID PRIMARY KEY,
    bot_id     UUID NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    exit       TEXT NOT NULL,
    last_lines TEXT NOT NULL
);
CREATE INDEX bot_crashes_bot ON bot_crashes (bot_id, id);
