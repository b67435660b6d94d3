-- The member roster, once an admin changed it over chat (flows/admin.yaml). No rows means
-- "household.yaml's members"; any row means this table is the whole roster and wins.
-- Written only by DataChange::SetMembers, which replaces every row in the commit
-- transaction that bumps household_version. Same columns on both backends.
CREATE TABLE members (
    name     TEXT PRIMARY KEY,
    pos      BIGINT NOT NULL,          -- roster order
    phone    TEXT NULL,                -- E.164
    user_id  TEXT NULL,                -- WhatsApp business-scoped user id
    role     TEXT NOT NULL CHECK (role IN ('admin', 'adult', 'child')),
    timezone TEXT NOT NULL,            -- IANA name
    language TEXT NOT NULL
);
