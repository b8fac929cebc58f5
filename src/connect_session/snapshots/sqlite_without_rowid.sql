---- plain table

-- load (sid, now)
SELECT "sid", "data", "expires" FROM "ConnectSession" WHERE "sid" = ?1 AND ("expires" IS NULL OR "expires" > ?2);

-- load_written (sid, now)
SELECT "sid", "data", "expires", CAST(0 AS BIGINT), "updatedAt" FROM "ConnectSession" WHERE "sid" = ?1 AND ("expires" IS NULL OR "expires" > ?2);

-- create (sid, data, expires, now)
INSERT INTO "ConnectSession" ("sid", "data", "expires", "createdAt", "updatedAt") VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT ("sid") DO NOTHING;

-- save (sid, data, expires, now)
INSERT INTO "ConnectSession" ("sid", "data", "expires", "createdAt", "updatedAt") VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT ("sid") DO UPDATE SET "data" = excluded."data", "expires" = excluded."expires", "updatedAt" = excluded."updatedAt";

-- update (data, expires, now, sid)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3 WHERE "sid" = ?4 AND ("expires" IS NULL OR "expires" > ?3);

-- update_if_version (data, expires, now, sid)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3 WHERE "sid" = ?4 AND ("expires" IS NULL OR "expires" > ?3);

-- replace (data, expires, now, sid)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3 WHERE "sid" = ?4;

-- touch (expires, now, sid)
UPDATE "ConnectSession" SET "expires" = ?1, "updatedAt" = ?2 WHERE "sid" = ?3 AND ("expires" IS NULL OR "expires" > ?2);

-- touch_throttled (expires, now, sid, limit)
UPDATE "ConnectSession" SET "expires" = ?1, "updatedAt" = ?2 WHERE "sid" = ?3 AND ("expires" IS NULL OR "expires" > ?2) AND ("expires" IS NULL OR "expires" < ?4);

-- touch_returning (expires, now, sid)
UPDATE "ConnectSession" SET "expires" = ?1, "updatedAt" = ?2 WHERE "sid" = ?3 AND ("expires" IS NULL OR "expires" > ?2) RETURNING "sid", "data", "expires";

-- touch_returning_throttled: none in this dialect

-- destroy (sid)
DELETE FROM "ConnectSession" WHERE "sid" = ?1;

-- delete_expired (now, limit)
DELETE FROM "ConnectSession" WHERE "sid" IN (SELECT "sid" FROM "ConnectSession" WHERE "expires" <= ?1 LIMIT ?2) AND "expires" <= ?1;

-- count (now)
SELECT COUNT(*) FROM "ConnectSession" WHERE ("expires" IS NULL OR "expires" > ?1);

-- list (now)
SELECT "sid", "data", "expires" FROM "ConnectSession" WHERE ("expires" IS NULL OR "expires" > ?1);

-- clear ()
DELETE FROM "ConnectSession";

-- sweep_lock: none in this dialect

---- versioned table, with users

-- load (sid, now)
SELECT "sid", "data", "expires", "version" FROM "ConnectSession" WHERE "sid" = ?1 AND ("expires" IS NULL OR "expires" > ?2);

-- load_written (sid, now)
SELECT "sid", "data", "expires", "version", "updatedAt" FROM "ConnectSession" WHERE "sid" = ?1 AND ("expires" IS NULL OR "expires" > ?2);

-- create (sid, data, expires, now, user)
INSERT INTO "ConnectSession" ("sid", "data", "expires", "createdAt", "updatedAt", "user_id") VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT ("sid") DO NOTHING;

-- save (sid, data, expires, now, user)
INSERT INTO "ConnectSession" ("sid", "data", "expires", "createdAt", "updatedAt", "user_id") VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT ("sid") DO UPDATE SET "data" = excluded."data", "expires" = excluded."expires", "updatedAt" = excluded."updatedAt", "user_id" = excluded."user_id", "version" = "ConnectSession"."version" + 1;

-- update (data, expires, now, user, sid)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3, "user_id" = ?4, "version" = "version" + 1 WHERE "sid" = ?5 AND ("expires" IS NULL OR "expires" > ?3);

-- update_if_version (data, expires, now, user, sid, version)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3, "user_id" = ?4, "version" = "version" + 1 WHERE "sid" = ?5 AND ("expires" IS NULL OR "expires" > ?3) AND "version" = ?6;

-- replace (data, expires, now, user, sid)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3, "user_id" = ?4, "version" = "version" + 1 WHERE "sid" = ?5;

-- touch (expires, now, sid)
UPDATE "ConnectSession" SET "expires" = ?1, "updatedAt" = ?2 WHERE "sid" = ?3 AND ("expires" IS NULL OR "expires" > ?2);

-- touch_throttled (expires, now, sid, limit)
UPDATE "ConnectSession" SET "expires" = ?1, "updatedAt" = ?2 WHERE "sid" = ?3 AND ("expires" IS NULL OR "expires" > ?2) AND ("expires" IS NULL OR "expires" < ?4);

-- touch_returning (expires, now, sid)
UPDATE "ConnectSession" SET "expires" = ?1, "updatedAt" = ?2 WHERE "sid" = ?3 AND ("expires" IS NULL OR "expires" > ?2) RETURNING "sid", "data", "expires", "version";

-- touch_returning_throttled: none in this dialect

-- destroy (sid)
DELETE FROM "ConnectSession" WHERE "sid" = ?1;

-- delete_expired (now, limit)
DELETE FROM "ConnectSession" WHERE "sid" IN (SELECT "sid" FROM "ConnectSession" WHERE "expires" <= ?1 LIMIT ?2) AND "expires" <= ?1;

-- count (now)
SELECT COUNT(*) FROM "ConnectSession" WHERE ("expires" IS NULL OR "expires" > ?1);

-- list (now)
SELECT "sid", "data", "expires", "version" FROM "ConnectSession" WHERE ("expires" IS NULL OR "expires" > ?1);

-- clear ()
DELETE FROM "ConnectSession";

-- same_user.update (data, expires, now, sid, user)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3, "version" = "version" + 1 WHERE "sid" = ?4 AND ("expires" IS NULL OR "expires" > ?3) AND "user_id" IS ?5;

-- same_user.update_if_version (data, expires, now, sid, version, user)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3, "version" = "version" + 1 WHERE "sid" = ?4 AND ("expires" IS NULL OR "expires" > ?3) AND "version" = ?5 AND "user_id" IS ?6;

-- same_user.replace (data, expires, now, sid, user)
UPDATE "ConnectSession" SET "data" = ?1, "expires" = ?2, "updatedAt" = ?3, "version" = "version" + 1 WHERE "sid" = ?4 AND "user_id" IS ?5;

-- users.list (user, now, after, limit)
SELECT "sid", '', "expires", "version", "updatedAt", "createdAt" FROM "ConnectSession" WHERE "user_id" = ?1 AND ("expires" IS NULL OR "expires" > ?2) AND "sid" > ?3 ORDER BY "sid" LIMIT ?4;

-- users.count (user, now)
SELECT COUNT(*) FROM "ConnectSession" WHERE "user_id" = ?1 AND ("expires" IS NULL OR "expires" > ?2);

-- users.destroy (user)
DELETE FROM "ConnectSession" WHERE "user_id" = ?1;

-- users.destroy_except (user, sid)
DELETE FROM "ConnectSession" WHERE "user_id" = ?1 AND NOT ("sid" = ?2);

-- sweep_lock: none in this dialect

