-- The SQLite schema gained these indexes in its migration 2; PostgreSQL had them from 1.
SELECT 1;
