ALTER TABLE outbox DROP COLUMN to_address;
DROP TABLE queue_seq;
DROP TABLE inbound_order;
DROP TABLE household_version;
ALTER TABLE conversations DROP COLUMN version;
