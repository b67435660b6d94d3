DROP TABLE IF EXISTS schedule_runs;
DROP TABLE IF EXISTS schedule_slots;
