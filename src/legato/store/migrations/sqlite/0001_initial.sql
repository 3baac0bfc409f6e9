-- SQLite only: mark the file as a legato database ('LEGA'), so that legato refuses files it
-- did not create and other programs' files refuse legato.
PRAGMA application_id = 1279608641;
