-- PostgreSQL only (its 0014_toast_lz4: lz4 for span and item bodies); SQLite does not compress
-- values. Here so both databases name the same migrations.
SELECT 1;
