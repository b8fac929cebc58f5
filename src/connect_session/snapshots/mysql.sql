---- plain table

-- load (sid, now)
SELECT `sid`, `data`, `expires` FROM `ConnectSession` WHERE `sid` = ? AND (`expires` IS NULL OR `expires` > ?);

-- load_written (sid, now)
SELECT `sid`, `data`, `expires`, CAST(0 AS SIGNED), `updatedAt` FROM `ConnectSession` WHERE `sid` = ? AND (`expires` IS NULL OR `expires` > ?);

-- create (sid, data, expires, now, now)
INSERT INTO `ConnectSession` (`sid`, `data`, `expires`, `createdAt`, `updatedAt`) VALUES (?, ?, ?, ?, ?);

-- save (sid, data, expires, now, now)
INSERT INTO `ConnectSession` (`sid`, `data`, `expires`, `createdAt`, `updatedAt`) VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE `data` = VALUES(`data`), `expires` = VALUES(`expires`), `updatedAt` = VALUES(`updatedAt`);

-- update (data, expires, now, sid, sid, now)
UPDATE `ConnectSession` SET `data` = ?, `expires` = ?, `updatedAt` = ? WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?);

-- update_if_version (data, expires, now, sid, sid, now)
UPDATE `ConnectSession` SET `data` = ?, `expires` = ?, `updatedAt` = ? WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?);

-- replace (data, expires, now, sid, sid)
UPDATE `ConnectSession` SET `data` = ?, `expires` = ?, `updatedAt` = ? WHERE `sid` = ? AND `sid` = CAST(? AS BINARY);

-- touch (expires, now, sid, sid, now)
UPDATE `ConnectSession` SET `expires` = ?, `updatedAt` = ? WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?);

-- touch_throttled (expires, now, sid, sid, now, limit)
UPDATE `ConnectSession` SET `expires` = ?, `updatedAt` = ? WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?) AND (`expires` IS NULL OR `expires` < ?);

-- touch_returning: none in this dialect

-- touch_returning_throttled: none in this dialect

-- destroy (sid, sid)
DELETE FROM `ConnectSession` WHERE `sid` = ? AND `sid` = CAST(? AS BINARY);

-- delete_expired (now, limit)
DELETE FROM `ConnectSession` WHERE `expires` <= ? ORDER BY `expires` LIMIT ?;

-- count (now)
SELECT COUNT(*) FROM `ConnectSession` WHERE (`expires` IS NULL OR `expires` > ?);

-- list (now)
SELECT `sid`, `data`, `expires` FROM `ConnectSession` WHERE (`expires` IS NULL OR `expires` > ?);

-- clear ()
DELETE FROM `ConnectSession`;

-- sweep_lock.take
SELECT 1 FROM `sequelstore_locks` WHERE name = 'sweep:ConnectSession' FOR UPDATE SKIP LOCKED;

-- sweep_lock.exists
SELECT COUNT(*) FROM `sequelstore_locks` WHERE name = 'sweep:ConnectSession';

-- sweep_lock.mark
UPDATE `sequelstore_locks` SET taken = taken + 1 WHERE name = 'sweep:ConnectSession';

-- sweep_lock.create
CREATE TABLE IF NOT EXISTS `sequelstore_locks` (name VARCHAR(191) NOT NULL PRIMARY KEY, taken BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB;

-- sweep_lock.create
INSERT IGNORE INTO `sequelstore_locks` (name) VALUES ('sweep:ConnectSession');

---- versioned table, with users

-- load (sid, now)
SELECT `sid`, `data`, `expires`, `version` FROM `ConnectSession` WHERE `sid` = ? AND (`expires` IS NULL OR `expires` > ?);

-- load_written (sid, now)
SELECT `sid`, `data`, `expires`, `version`, `updatedAt` FROM `ConnectSession` WHERE `sid` = ? AND (`expires` IS NULL OR `expires` > ?);

-- create (sid, data, expires, now, now, user)
INSERT INTO `ConnectSession` (`sid`, `data`, `expires`, `createdAt`, `updatedAt`, `user_id`) VALUES (?, ?, ?, ?, ?, ?);

-- save (sid, data, expires, now, now, user)
INSERT INTO `ConnectSession` (`sid`, `data`, `expires`, `createdAt`, `updatedAt`, `user_id`) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE `data` = VALUES(`data`), `expires` = VALUES(`expires`), `updatedAt` = VALUES(`updatedAt`), `user_id` = VALUES(`user_id`), `version` = `ConnectSession`.`version` + 1;

-- update (data, expires, now, user, sid, sid, now)
UPDATE `ConnectSession` SET `data` = ?, `expires` = ?, `updatedAt` = ?, `user_id` = ?, `version` = `version` + 1 WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?);

-- update_if_version (data, expires, now, user, sid, sid, now, version)
UPDATE `ConnectSession` SET `data` = ?, `expires` = ?, `updatedAt` = ?, `user_id` = ?, `version` = `version` + 1 WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?) AND `version` = ?;

-- replace (data, expires, now, user, sid, sid)
UPDATE `ConnectSession` SET `data` = ?, `expires` = ?, `updatedAt` = ?, `user_id` = ?, `version` = `version` + 1 WHERE `sid` = ? AND `sid` = CAST(? AS BINARY);

-- touch (expires, now, sid, sid, now)
UPDATE `ConnectSession` SET `expires` = ?, `updatedAt` = ? WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?);

-- touch_throttled (expires, now, sid, sid, now, limit)
UPDATE `ConnectSession` SET `expires` = ?, `updatedAt` = ? WHERE `sid` = ? AND `sid` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?) AND (`expires` IS NULL OR `expires` < ?);

-- touch_returning: none in this dialect

-- touch_returning_throttled: none in this dialect

-- destroy (sid, sid)
DELETE FROM `ConnectSession` WHERE `sid` = ? AND `sid` = CAST(? AS BINARY);

-- delete_expired (now, limit)
DELETE FROM `ConnectSession` WHERE `expires` <= ? ORDER BY `expires` LIMIT ?;

-- count (now)
SELECT COUNT(*) FROM `ConnectSession` WHERE (`expires` IS NULL OR `expires` > ?);

-- list (now)
SELECT `sid`, `data`, `expires`, `version` FROM `ConnectSession` WHERE (`expires` IS NULL OR `expires` > ?);

-- clear ()
DELETE FROM `ConnectSession`;

-- users.list (user, user, now, after, limit)
SELECT `sid`, '', `expires`, `version`, `updatedAt`, `createdAt` FROM `ConnectSession` WHERE `user_id` = ? AND `user_id` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?) AND `sid` > ? ORDER BY `sid` LIMIT ?;

-- users.count (user, user, now)
SELECT COUNT(*) FROM `ConnectSession` WHERE `user_id` = ? AND `user_id` = CAST(? AS BINARY) AND (`expires` IS NULL OR `expires` > ?);

-- users.destroy (user, user)
DELETE FROM `ConnectSession` WHERE `user_id` = ? AND `user_id` = CAST(? AS BINARY);

-- users.destroy_except (user, user, sid, sid)
DELETE FROM `ConnectSession` WHERE `user_id` = ? AND `user_id` = CAST(? AS BINARY) AND NOT (`sid` = ? AND `sid` = CAST(? AS BINARY));

-- sweep_lock.take
SELECT 1 FROM `sequelstore_locks` WHERE name = 'sweep:ConnectSession' FOR UPDATE SKIP LOCKED;

-- sweep_lock.exists
SELECT COUNT(*) FROM `sequelstore_locks` WHERE name = 'sweep:ConnectSession';

-- sweep_lock.mark
UPDATE `sequelstore_locks` SET taken = taken + 1 WHERE name = 'sweep:ConnectSession';

-- sweep_lock.create
CREATE TABLE IF NOT EXISTS `sequelstore_locks` (name VARCHAR(191) NOT NULL PRIMARY KEY, taken BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB;

-- sweep_lock.create
INSERT IGNORE INTO `sequelstore_locks` (name) VALUES ('sweep:ConnectSession');

