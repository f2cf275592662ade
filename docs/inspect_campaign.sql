-- One campaign's experiments, best first: parameters, reward and the CD feature.
-- The same text runs on MySQL/MariaDB and on SQLite (the default database):
--   mariadb -u maosic -p maosic < docs/inspect_campaign.sql
--   sqlite3 instance/maosic.sqlite3 < docs/inspect_campaign.sql
-- It shows the newest request; for another, write its id in place of (SELECT MAX(id) ...).
-- On MariaDB, `mariadb -u maosic` from the server's own machine logs in as 'maosic'@'localhost'.
-- A user made only as 'maosic'@'%' gets ERROR 1045 (Access denied) on a fresh mariadb-install-db
-- server: its anonymous accounts ''@'localhost' match the host more closely and win. Either
-- make the user for localhost too (as root):
--   CREATE USER 'maosic'@'localhost' IDENTIFIED BY 'secret';
--   GRANT ALL ON maosic.* TO 'maosic'@'localhost';
-- or drop the anonymous accounts (mariadb-secure-installation does too):
--   DROP USER IF EXISTS ''@'localhost';
SELECT e.number,
       JSON_EXTRACT(e.params, '$.T') AS T_C,
       JSON_EXTRACT(e.params, '$.C') AS C_mmol_mL,
       e.status,
       ROUND(e.reward, 4) AS reward,
       (SELECT f.value FROM features f
         WHERE f.experiment_id = e.id AND f.name = 'cd_at_exciton_mdeg') AS cd_mdeg
  FROM experiments e
 WHERE e.request_id = (SELECT MAX(id) FROM requests)
 ORDER BY e.reward DESC, e.number;
